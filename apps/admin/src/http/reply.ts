import type { Response } from 'express';

/** A resource read: sets its ETag. */
export function sendEntity<T>(res: Response, etag: string, body: T): T {
  res.setHeader('ETag', etag);
  return body;
}

/** A write answers with the resource, its new ETag and the revision (201 + Location when it was created). */
export function sendWritten<T extends object>(res: Response, w: { resource: T; etag: string; revision: number; created: boolean }, location: string): T & { revision: number } {
  res.setHeader('ETag', w.etag);
  if (w.created) res.status(201).setHeader('Location', location);
  return { ...w.resource, revision: w.revision };
}
