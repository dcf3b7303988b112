import type { ReactNode } from "react";
import { errorMessage } from "../../api/errors";

/** The one error block of the app: an assertive live region styled as `.error` (a block, so
 *  children may hold lists and buttons).
 *  Pass `error` to render "<title>: <the server's message>", or children for any other text. */
export function Alert({
  title,
  error,
  children,
  className,
}: {
  title?: string;
  error?: unknown;
  children?: ReactNode;
  className?: string;
}) {
  const detail = error === undefined ? null : errorMessage(error);
  return (
    <div role="alert" className={className ? `error ${className}` : "error"}>
      {title}
      {title && detail ? ": " : null}
      {detail}
      {children}
    </div>
  );
}
