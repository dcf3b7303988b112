// Turns the backend's `{"detail": ...}` error bodies into one sentence a person can act on.

/** The 422 body of an upload with a bad row: `{"detail": {"message", "row", "column"}}`. */
export interface RowProblem {
  message: string;
  row?: number | null;
  column?: string | number | null;
}

interface FieldProblem {
  loc?: (string | number)[];
  msg: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    super(describeDetail(status, body));
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

function isRowProblem(value: unknown): value is RowProblem {
  return typeof value === "object" && value !== null && "message" in value;
}

export function describeDetail(status: number, body: unknown): string {
  const detail =
    typeof body === "object" && body !== null && "detail" in body
      ? (body as { detail: unknown }).detail
      : body;
  if (typeof detail === "string" && detail) return detail;
  if (isRowProblem(detail)) {
    // The backend's message usually names the place already ("row 3, column chosen: ...").
    if (detail.row == null || /\brow \d+/i.test(detail.message)) return capitalize(detail.message);
    const column =
      detail.column == null || detail.column === ""
        ? ""
        : typeof detail.column === "number"
          ? `, column ${detail.column}`
          : `, column "${detail.column}"`;
    return `Row ${detail.row}${column}: ${detail.message}`;
  }
  if (Array.isArray(detail) && detail.length > 0) {
    // FastAPI's request validation errors: name the field, skip the "body"/"query" prefix.
    return (detail as FieldProblem[])
      .map((problem) => {
        const field = (problem.loc ?? []).filter((part) => part !== "body" && part !== "query");
        return field.length ? `${field.join(".")}: ${problem.msg}` : problem.msg;
      })
      .join("; ");
  }
  return `The server answered ${status}.`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Unwraps an openapi-fetch result: the data, or an ApiError carrying the server's message. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    throw new ApiError(result.response.status, result.error);
  }
  return result.data as T;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Every bad row a refused upload lists (`detail.errors`), or none. */
export function rowProblems(error: unknown): RowProblem[] {
  if (!(error instanceof ApiError)) return [];
  const body = error.body as { detail?: { errors?: unknown } } | null;
  const errors = body?.detail?.errors;
  return Array.isArray(errors) ? errors.filter(isRowProblem) : [];
}

/** How many bad rows a refused upload found in all (`detail.n_errors`), or 0. */
export function problemCount(error: unknown): { count: number; capped: boolean } {
  if (!(error instanceof ApiError)) return { count: 0, capped: false };
  const detail = (error.body as { detail?: { n_errors?: unknown; capped?: unknown } } | null)?.detail;
  return {
    count: typeof detail?.n_errors === "number" ? detail.n_errors : 0,
    capped: detail?.capped === true,
  };
}
