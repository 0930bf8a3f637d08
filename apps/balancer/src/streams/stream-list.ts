/**
 * The calls open on one backend, oldest first: an intrusive doubly linked list (the links live on
 * the call), so adding a call when it commits and removing it when it ends are a few pointer
 * writes with no allocation and no hashing, and the oldest streams are at the head, where
 * rebalancing and /state look.
 */
export interface ListedStream {
  /** @internal */ streamPrev: ListedStream | null;
  /** @internal */ streamNext: ListedStream | null;
  /** @internal The list it is on, or null. */ streamList: StreamList | null;
  /** When its response began (performance.now() ms): its age counts from here. */
  committedAt: number;
}

export class StreamList {
  head: ListedStream | null = null;
  private tail: ListedStream | null = null;
  size = 0;

  add(s: ListedStream): void {
    if (s.streamList !== null) s.streamList.remove(s);
    s.streamList = this;
    s.streamPrev = this.tail;
    s.streamNext = null;
    if (this.tail !== null) this.tail.streamNext = s;
    else this.head = s;
    this.tail = s;
    this.size++;
  }

  remove(s: ListedStream): void {
    if (s.streamList !== this) return;
    if (s.streamPrev !== null) s.streamPrev.streamNext = s.streamNext;
    else this.head = s.streamNext;
    if (s.streamNext !== null) s.streamNext.streamPrev = s.streamPrev;
    else this.tail = s.streamPrev;
    s.streamPrev = s.streamNext = null;
    s.streamList = null;
    this.size--;
  }

  /** The oldest streams first, at most `max`, opened at or before `bornBy` (a snapshot: ending them while iterating is safe). */
  oldest(max: number, bornBy: number): ListedStream[] {
    const out: ListedStream[] = [];
    for (let s = this.head; s !== null && out.length < max && s.committedAt <= bornBy; s = s.streamNext) out.push(s);
    return out;
  }

  /** Every stream on it, oldest first (a snapshot). */
  all(): ListedStream[] {
    const out: ListedStream[] = [];
    for (let s = this.head; s !== null; s = s.streamNext) out.push(s);
    return out;
  }
}
