/** A named resource (a health policy, a route) put into its list: replaced where it stands, or added at the end. */
export function putNamed<T extends { name: string }>(list: readonly T[], item: T): { list: T[]; index: number } {
  const at = list.findIndex((x) => x.name === item.name);
  const next = at >= 0 ? list.map((x, i) => (i === at ? item : x)) : [...list, item];
  return { list: next, index: at >= 0 ? at : next.length - 1 };
}
