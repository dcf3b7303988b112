import { useState, type FormEvent } from "react";
import { errorMessage } from "../../../api/errors";
import { useChangePassword, useCreateToken, useRevokeToken, useTokens, type Token } from "../api/auth";

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
  const [password, setPassword] = useState("");
  const [issued, setIssued] = useState<string | null>(null);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const lifetime = days.trim() === "" ? null : Number(days);
    create.mutate(
      { name: name.trim() || "api", expires_in_days: lifetime, ...(password ? { password } : {}) },
      {
        onSuccess: (result) => {
          setIssued(result.access_token);
          setName("");
          setPassword("");
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
          <label>
            Your password
            <input
              type="password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              autoComplete="current-password"
              aria-describedby="token-password-help"
            />
          </label>
          <button type="submit" className="primary" disabled={create.isPending}>
            Create token
          </button>
        </div>
        <p id="token-password-help" className="muted small">
          A token outlives this browser session, so creating one asks for your password again.
        </p>
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
      <PasswordCard />
    </main>
  );
}

/** Change one's own password: the current one is needed; every other session and token ends. */
function PasswordCard() {
  const change = useChangePassword();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [done, setDone] = useState(false);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(false);
    change.mutate(
      { current_password: current, new_password: next },
      {
        onSuccess: () => {
          setDone(true);
          setCurrent("");
          setNext("");
        },
      },
    );
  };

  return (
    <form className="card" onSubmit={submit} aria-label="Change your password">
      <h2>Password</h2>
      <div className="upload-row">
        <label>
          Current password
          <input
            type="password"
            required
            value={current}
            onChange={(e) => setCurrent(e.target.value)}
            autoComplete="current-password"
          />
        </label>
        <label>
          New password
          <input
            type="password"
            required
            minLength={8}
            value={next}
            onChange={(e) => setNext(e.target.value)}
            autoComplete="new-password"
          />
        </label>
        <button type="submit" disabled={change.isPending}>
          Change password
        </button>
      </div>
      <p className="muted small">Your other sessions and API tokens end; this browser stays signed in.</p>
      {done && (
        <p role="status" className="success">
          Password changed. Your other sessions and tokens have ended.
        </p>
      )}
      {change.isError && (
        <p role="alert" className="error">
          Could not change the password: {errorMessage(change.error)}
        </p>
      )}
    </form>
  );
}
