/** The `{n}` of /v1/revisions/{n}: a revision number 1..2^31-1 (what the store can hold), else 400 naming `n`. */
import { Injectable, type PipeTransform } from '@nestjs/common';
import { ValidationProblem } from './problem';

export const MAX_REVISION = 2 ** 31 - 1;

@Injectable()
export class RevisionNumberPipe implements PipeTransform<string, number> {
  transform(value: string): number {
    const n = /^[0-9]{1,10}$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_REVISION) {
      throw new ValidationProblem([{ path: 'n', message: `must be a revision number from 1 to ${MAX_REVISION}` }], 'Invalid path parameter');
    }
    return n;
  }
}
