/** The signed-in token: kept in this tab's sessionStorage (never in a URL), gone on sign-out. */
const KEY = 'switchboard.token';

export const session = {
  token(): string | undefined {
    return sessionStorage.getItem(KEY) ?? undefined;
  },
  signIn(token: string): void {
    sessionStorage.setItem(KEY, token);
  },
  signOut(): void {
    sessionStorage.removeItem(KEY);
  },
};
