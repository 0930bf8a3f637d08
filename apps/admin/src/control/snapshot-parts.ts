/**
 * A snapshot's JSON cut into parts of at most `size` UTF-16 code units (at most 3 bytes of UTF-8
 * each), never between the two halves of a surrogate pair: each part is sent as a protobuf
 * string (UTF-8), where half a pair would turn into U+FFFD and the config put back together
 * would not be the one sent.
 */
export function snapshotParts(json: string, size: number): string[] {
  if (json.length <= size) return [json];
  const parts: string[] = [];
  let start = 0;
  while (start < json.length) {
    let end = Math.min(start + size, json.length);
    const last = json.charCodeAt(end - 1);
    if (end < json.length && last >= 0xd800 && last <= 0xdbff && end - 1 > start) end--;
    parts.push(json.slice(start, end));
    start = end;
  }
  return parts;
}
