import type { ReactNode } from "react";

/** What a list says when it has nothing to show, and what to do about it. */
export function EmptyState({ children, action }: { children: ReactNode; action?: ReactNode }) {
  return (
    <div className="empty-state" data-testid="empty-state">
      <p className="muted">{children}</p>
      {action}
    </div>
  );
}
