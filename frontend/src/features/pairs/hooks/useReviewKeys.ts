import { useEffect, useRef } from "react";

export interface ReviewKeyActions {
  /** Move the selection by `step` rows (j: +1, k: −1). */
  move: (step: number) => void;
  flag: () => void;
  keep: () => void;
  swap: () => void;
  note: () => void;
  undo: () => void;
  help: () => void;
}

/** The keyboard loop and its keys, shown in the help overlay. */
export const REVIEW_KEYS: [string, string][] = [
  ["j / k", "next / previous pair"],
  ["f", "flag (or unflag) and go to the next pair"],
  ["K (shift+k)", "keep and go to the next pair"],
  ["s", "swap chosen and rejected and go to the next pair"],
  ["n", "write a note"],
  ["u", "undo the last review action"],
  ["?", "show or hide these keys"],
];

function typing(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

/** Review keys on the whole page, except while typing in a field. */
export function useReviewKeys(actions: ReviewKeyActions, enabled = true) {
  const latest = useRef(actions);
  latest.current = actions;
  useEffect(() => {
    if (!enabled) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
      const a = latest.current;
      const handlers: Record<string, () => void> = {
        j: () => a.move(1),
        k: () => a.move(-1),
        f: a.flag,
        K: a.keep,
        s: a.swap,
        n: a.note,
        u: a.undo,
        "?": a.help,
      };
      const handler = handlers[event.key];
      if (handler) {
        event.preventDefault();
        handler();
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [enabled]);
}
