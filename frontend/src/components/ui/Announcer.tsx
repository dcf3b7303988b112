/** A polite live region, read out by screen readers whenever `message` changes (e.g. each
 *  review decision); invisible on screen. */
export function Announcer({ message }: { message: string }) {
  return (
    <p className="visually-hidden" role="status" aria-live="polite" aria-atomic="true" data-testid="announcer">
      {message}
    </p>
  );
}
