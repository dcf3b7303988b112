/** Word-level diff of two texts (chosen vs rejected): words only in one side are marked. */

export type DiffPart = { kind: "same" | "removed" | "added"; text: string };

/** Beyond this many words a side, the O(n·m) table is not worth it: the texts are shown plain. */
export const MAX_DIFF_WORDS = 3000;

function tokens(text: string): string[] {
  return text.split(/(\s+)/).filter((t) => t.length > 0);
}

/**
 * Longest-common-subsequence diff over words (whitespace kept as its own tokens): `removed` are
 * in `before` only, `added` in `after` only. Null when either side has too many words.
 */
export function wordDiff(before: string, after: string): DiffPart[] | null {
  const a = tokens(before);
  const b = tokens(after);
  if (a.length > MAX_DIFF_WORDS * 2 || b.length > MAX_DIFF_WORDS * 2) return null;
  const m = a.length;
  const n = b.length;
  // lcs[i][j]: LCS length of a[i..] and b[j..], one flat array.
  const width = n + 1;
  const lcs = new Uint32Array((m + 1) * width);
  for (let i = m - 1; i >= 0; i--) {
    for (let j = n - 1; j >= 0; j--) {
      lcs[i * width + j] =
        a[i] === b[j]
          ? lcs[(i + 1) * width + j + 1] + 1
          : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
    }
  }
  const parts: DiffPart[] = [];
  const push = (kind: DiffPart["kind"], text: string) => {
    const last = parts.at(-1);
    if (last && last.kind === kind) last.text += text;
    else parts.push({ kind, text });
  };
  let i = 0;
  let j = 0;
  while (i < m && j < n) {
    if (a[i] === b[j]) {
      push("same", a[i]);
      i++;
      j++;
    } else if (lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) {
      push("removed", a[i++]);
    } else {
      push("added", b[j++]);
    }
  }
  while (i < m) push("removed", a[i++]);
  while (j < n) push("added", b[j++]);
  return parts;
}

interface Props {
  chosen: string;
  rejected: string;
}

/** Chosen and rejected side by side, each with the words the other lacks highlighted. */
export function WordDiff({ chosen, rejected }: Props) {
  const parts = wordDiff(chosen, rejected);
  if (parts === null) {
    return <p className="muted">These responses are too long to diff word by word.</p>;
  }
  return (
    <div className="responses diff" data-testid="word-diff">
      <section aria-label="Chosen response (diff)" className="response chosen">
        <h4>Chosen</h4>
        <pre className="text">
          {parts
            .filter((p) => p.kind !== "added")
            .map((p, k) =>
              p.kind === "removed" ? (
                <mark key={k} className="diff-only" title="only in chosen">
                  {p.text}
                </mark>
              ) : (
                <span key={k}>{p.text}</span>
              ),
            )}
        </pre>
      </section>
      <section aria-label="Rejected response (diff)" className="response rejected">
        <h4>Rejected</h4>
        <pre className="text">
          {parts
            .filter((p) => p.kind !== "removed")
            .map((p, k) =>
              p.kind === "added" ? (
                <mark key={k} className="diff-only" title="only in rejected">
                  {p.text}
                </mark>
              ) : (
                <span key={k}>{p.text}</span>
              ),
            )}
        </pre>
      </section>
    </div>
  );
}
