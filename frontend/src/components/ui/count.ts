/** A count with its noun, as English reads it: "1 pair", "1,204 pairs", "0 bad rows". */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n.toLocaleString()} ${n === 1 ? noun : plural}`;
}
