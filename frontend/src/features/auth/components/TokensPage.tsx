import { useState, type FormEvent } from "react";
import { useChangePassword, useCreateToken, useRevokeToken, useTokens, type Token } from "../api/auth";
import { Alert } from "../../../components/ui/Alert";
import { Table } from "../../../components/ui/Table";

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
          <Alert title="Could not create the token" error={create.error} />
        )}
      </form>
      <section className="card" aria-labelledby="tokens-title">
        <h2 id="tokens-title">Your tokens</h2>
        {tokens.isError && (
          <Alert title="Could not load tokens" error={tokens.error} />
        )}
        {revoke.isError && (
          <Alert title="Could not revoke" error={revoke.error} />
        )}
        {tokens.data && (
          <Table
            label="API tokens"
            className="data-table"
            rows={tokens.data}
            rowKey={(token) => token.id}
            columns={[
              { key: "name", header: "Name", cell: (token: Token) => token.name },
              { key: "prefix", header: "Starts with", cell: (token: Token) => <code>{token.prefix}…</code> },
              { key: "created", header: "Created", cell: (token: Token) => when(token.created_at) },
              { key: "used", header: "Last used", cell: (token: Token) => when(token.last_used_at) },
              { key: "expires", header: "Expires", cell: (token: Token) => expiry(token) },
              {
                key: "actions",
                header: <span className="visually-hidden">Actions</span>,
                cell: (token: Token) => (
                  <button
                    type="button"
                    className="danger"
                    disabled={revoke.isPending}
                    onClick={() => revoke.mutate(token.id)}
                    aria-label={`Revoke ${token.name} (${token.prefix}…)`}
                  >
                    Revoke
                  </button>
                ),
              },
            ]}
          />
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
        <Alert title="Could not change the password" error={change.error} />
      )}
    </form>
  );
}
