/**
 * The dashboard's entry point (bundled by scripts/build-ui.mjs into /ui/app.js): sign-in with an
 * API token, then a refresh every 2 s until sign-out or a refused token.
 */
import { createSwitchboardClient } from '#api-client';
import { Dashboard } from './dashboard';
import { session } from './session';

const REFRESH_MS = 2000;
/** A request that hangs must not stop the refreshes: each gets 8 s. */
const fetchWithTimeout = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => fetch(input, { ...init, signal: AbortSignal.timeout(8000) });
const api = createSwitchboardClient({ baseUrl: location.origin, token: () => session.token(), fetch: fetchWithTimeout });
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
let timer: number | undefined;
let current: Dashboard | null = null;

function say(message: string): void {
  $('status').textContent = message;
}

function showSignIn(error = ''): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  // Nothing of the signed-out session stays in the page, hidden or not.
  current?.stop();
  current = null;
  $('pools').replaceChildren();
  for (const id of ['nodes', 'revisions']) $(id).querySelector('tbody')?.replaceChildren();
  $('revision-diff').replaceChildren();
  $('status').textContent = '';
  delete document.body.dataset.scope;
  $('app-view').hidden = true;
  $('sign-out').hidden = true;
  $('who').textContent = '';
  $('sign-in-view').hidden = false;
  $('sign-in-error').textContent = error;
  ($('token') as HTMLInputElement).value = '';
  $('token').focus();
}

async function start(): Promise<void> {
  const self = await api.GET('/v1/tokens/self');
  if (!self.response.ok || !self.data) {
    session.signOut();
    return showSignIn(self.response.status === 401 ? 'That token is not valid.' : self.response.status === 403 ? 'That token cannot read the configuration (it needs the read scope).' : `The admin answered HTTP ${self.response.status}.`);
  }
  const scopes = self.data.scopes;
  const canWrite = scopes.includes('write') || scopes.includes('admin');
  $('sign-in-view').hidden = true;
  $('app-view').hidden = false;
  $('sign-out').hidden = false;
  $('who').textContent = `${self.data.name} (${canWrite ? 'read and write' : 'read only'})`;
  document.body.dataset.scope = canWrite ? 'write' : 'read';
  $('pools').replaceChildren();
  current?.stop();
  const dashboard = new Dashboard(api, canWrite, say);
  current = dashboard;
  const tick = async (): Promise<void> => {
    const started = Date.now();
    // The start times of the last refreshes, for whoever checks the cadence (the browser test).
    document.body.dataset.refreshStarts = [...(document.body.dataset.refreshStarts ?? '').split(',').filter(Boolean).slice(-9), String(started)].join(',');
    try {
      await dashboard.refresh();
      document.body.dataset.refreshedAt = String(Date.now());
    } catch (err) {
      say(`Refresh failed: ${(err as Error).message}`);
    }
    // Every REFRESH_MS from the start of the last refresh, however long it took.
    if (session.token() !== undefined && current === dashboard) timer = window.setTimeout(() => void tick(), Math.max(0, REFRESH_MS - (Date.now() - started)));
  };
  await tick();
}

$('sign-in').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = ($('token') as HTMLInputElement).value.trim();
  if (!token) return;
  session.signIn(token);
  void start();
});

$('sign-out').addEventListener('click', () => {
  session.signOut();
  showSignIn();
  say('');
});

if (session.token() !== undefined) void start();
else showSignIn();
