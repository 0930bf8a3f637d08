/**
 * Conditional writes (RFC 9110 If-Match): a PUT, PATCH or DELETE that names the ETag it last
 * read fails with 412 if the resource changed since; `*` requires that it exists; without
 * If-Match the last writer wins. Checked under the config write lock, so it is atomic.
 */
import { HttpStatus } from '@nestjs/common';
import { ProblemException } from './problem';

export function checkIfMatch(ifMatch: string | undefined, current: string | undefined, what: string): void {
  if (ifMatch === undefined || ifMatch.trim() === '') return;
  if (ifMatch.trim() === '*') {
    if (current === undefined) throw preconditionFailed(`${what} does not exist (If-Match: *)`, undefined);
    return;
  }
  const tags = ifMatch.split(',').map((t) => t.trim().replace(/^W\//, ''));
  if (current === undefined || !tags.includes(current)) {
    throw preconditionFailed(
      current === undefined ? `${what} does not exist, so it cannot match If-Match ${ifMatch}` : `${what} has changed: its ETag is ${current}, not ${ifMatch}`,
      current,
    );
  }
}

function preconditionFailed(detail: string, currentEtag: string | undefined): ProblemException {
  return new ProblemException(HttpStatus.PRECONDITION_FAILED, 'precondition-failed', 'Precondition failed', detail, currentEtag ? { currentEtag } : {});
}
