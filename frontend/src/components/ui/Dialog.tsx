import { useEffect, useId, useRef, type ReactNode } from "react";

/**
 * An overlay with a title and a Close button: Escape closes it, it takes the focus when it
 * opens and gives it back to what had it when it closes.
 */
export function Dialog({
  title,
  onClose,
  children,
  className,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  className?: string;
}) {
  const titleId = useId();
  const box = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  close.current = onClose;
  useEffect(() => {
    const before = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    box.current?.focus();
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        close.current();
      }
    };
    document.addEventListener("keydown", onKey, true);
    return () => {
      document.removeEventListener("keydown", onKey, true);
      before?.focus();
    };
  }, []);
  return (
    <div
      ref={box}
      className={className ? `card dialog ${className}` : "card dialog"}
      role="dialog"
      aria-labelledby={titleId}
      tabIndex={-1}
    >
      <h3 id={titleId}>{title}</h3>
      {children}
      <button type="button" onClick={onClose}>
        Close <span className="muted small">(Esc)</span>
      </button>
    </div>
  );
}
