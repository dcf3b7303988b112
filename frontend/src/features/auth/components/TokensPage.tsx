import { useState, type FormEvent } from "react";
import { errorMessage } from "../../../api/errors";
import { useCreateToken, useRevokeToken, useTokens, type Token } from "../api/auth";

function when(value: string | null | undefined): string {
  return value ? new Date(value).toLocaleString() : "–";
}

function expiry(token: Token): string {
  if (!token.expires_at) return "never";
  const left = new Date(token.expires_at).getTime() - Date.now();
  return left <= 0 ? "expired" : when(token.expires_at);
}

/** The caller's API tokens: what exists, a new one for a script (shown once), revocation. */
export function TokensPage() {
  const tokens = useTokens();
  const create = useCreateToken();
  const revoke = useRevokeToken();
  const [name, setName] = useState("");
  const [days, setDays] = useState("90");
  const [issued, setIssued] = useState<string | null>(null);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const lifetime = days.trim() === "" ? null : Number(days);
    create.mutate(
      { name: name.trim() || "api", expires_in_days: lifetime },
      {
        onSuccess: (result) => {
          setIssued(result.access_token);
          setName("");
        },
      },
    );
  };

  return (
    <main className="page">
      <h1>API tokens</h1>
      <form className="card" onSubmit={submit} aria-label="Create a token">
        <h2>New token</h2>
        <div className="upload-row">
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. ci" />
          </label>
          <label>
            Expires after (days, 0 = never)
            <input type="number" min={0} step="any" value={days} onChange={(e) => setDays(e.target.value)} />
          </label>
          <button type="submit" className="primary" disabled={create.isPending}>
            Create token
          </button>
        </div>
        {issued && (
          <p role="status" className="success">
            Copy it now, it is shown only once: <code data-testid="new-token">{issued}</code>
          </p>
        )}
        {create.isError && (
          <p role="alert" className="error">
            Could not create the token: {errorMessage(create.error)}
          </p>
        )}
      </form>
      <section className="card" aria-labelledby="tokens-title">
        <h2 id="tokens-title">Your tokens</h2>
        {tokens.isError && (
          <p role="alert" className="error">
            Could not load tokens: {errorMessage(tokens.error)}
          </p>
        )}
        {revoke.isError && (
          <p role="alert" className="error">
            Could not revoke: {errorMessage(revoke.error)}
          </p>
        )}
        {tokens.data && (
          <table className="data-table" aria-label="API tokens">
            <thead>
              <tr>
                <th>Name</th>
                <th>Starts with</th>
                <th>Created</th>
                <th>Last used</th>
                <th>Expires</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {tokens.data.map((token) => (
                <tr key={token.id}>
                  <td>{token.name}</td>
                  <td>
                    <code>{token.prefix}…</code>
                  </td>
                  <td>{when(token.created_at)}</td>
                  <td>{when(token.last_used_at)}</td>
                  <td>{expiry(token)}</td>
                  <td>
                    <button
                      type="button"
                      className="danger"
                      disabled={revoke.isPending}
                      onClick={() => revoke.mutate(token.id)}
                      aria-label={`Revoke ${token.name} (${token.prefix}…)`}
                    >
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <p className="muted small">
          Revoking the token of this browser session logs you out. A login's own token expires after
          the server's session lifetime.
        </p>
      </section>
    </main>
  );
}
