import { useState, type FormEvent } from "react";
import { useMe } from "../../auth/api/auth";
import { useCreateUser, useDeleteUser, useUpdateUser, useUsers, type AdminUser } from "../api/admin";
import { Alert } from "../../../components/ui/Alert";
import { Table, type Column } from "../../../components/ui/Table";

/** An admin's view of the accounts: create one, grant or withdraw admin, set a new password
 * (which ends that user's sessions), delete an account (its datasets first go to another one). */
export function AdminPage() {
  const me = useMe();
  const users = useUsers();
  const create = useCreateUser();
  const update = useUpdateUser();
  const remove = useDeleteUser();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [isAdmin, setIsAdmin] = useState(false);
  const [message, setMessage] = useState<string | null>(null);

  if (me.data && !me.data.is_admin) {
    return (
      <main className="page">
        <h1>Users</h1>
        <Alert>Only an admin manages users.</Alert>
      </main>
    );
  }

  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate(
      { username: username.trim(), password, is_admin: isAdmin },
      {
        onSuccess: (user) => {
          setMessage(`Created ${user.username}; they log in with the password you chose.`);
          setUsername("");
          setPassword("");
          setIsAdmin(false);
        },
      },
    );
  };
  const resetPassword = (user: AdminUser) => {
    const next = window.prompt(`New password for ${user.username} (at least 8 characters):`);
    if (!next) return;
    update.mutate(
      { id: user.id, password: next },
      { onSuccess: () => setMessage(`New password set for ${user.username}; their sessions and tokens ended.`) },
    );
  };
  const deleteUser = (user: AdminUser) => {
    const owned = user.n_datasets ?? 0;
    if (owned === 0) {
      if (window.confirm(`Delete the account ${user.username}?`)) {
        remove.mutate({ id: user.id }, { onSuccess: () => setMessage(`Deleted ${user.username}.`) });
      }
      return;
    }
    // Their datasets go to another account first, with their jobs, scores and review history.
    const heir = window.prompt(
      `${user.username} owns ${owned} dataset${owned === 1 ? "" : "s"}. Username of the account that takes ` +
        `${owned === 1 ? "it" : "them"} (with jobs, scores and review history) before the account is deleted:`,
    );
    if (!heir?.trim()) return;
    remove.mutate(
      { id: user.id, transferTo: heir.trim() },
      {
        onSuccess: () =>
          setMessage(`Deleted ${user.username}; ${heir.trim()} now owns ${owned === 1 ? "their dataset" : `their ${owned} datasets`}.`),
      },
    );
  };
  const error = users.error ?? create.error ?? update.error ?? remove.error;

  const columns: Column<AdminUser>[] = [
    {
      key: "username",
      header: "Username",
      cell: (user) => (
        <>
          {user.username}
          {user.id === me.data?.id && <span className="muted small"> (you)</span>}
        </>
      ),
    },
    {
      key: "admin",
      header: "Admin",
      cell: (user) => (
        <input
          type="checkbox"
          aria-label={`${user.username} is an admin`}
          checked={user.is_admin}
          disabled={user.id === me.data?.id || update.isPending}
          onChange={(e) => update.mutate({ id: user.id, is_admin: e.target.checked })}
        />
      ),
    },
    { key: "datasets", header: "Datasets", cell: (user) => user.n_datasets, className: "num" },
    { key: "created", header: "Created", cell: (user) => new Date(user.created_at).toLocaleDateString(), className: "muted" },
    {
      key: "actions",
      header: <span className="visually-hidden">Actions</span>,
      className: "actions",
      cell: (user) => (
        <>
          <button type="button" onClick={() => resetPassword(user)} aria-label={`New password for ${user.username}`}>
            New password
          </button>{" "}
          <button
            type="button"
            className="danger"
            aria-label={`Delete account ${user.username}`}
            disabled={user.id === me.data?.id || remove.isPending}
            title={(user.n_datasets ?? 0) > 0 ? "Their datasets go to another account first" : undefined}
            onClick={() => deleteUser(user)}
          >
            Delete
          </button>
        </>
      ),
    },
  ];
  return (
    <main className="page">
      <h1>Users</h1>
      <section className="card" aria-labelledby="new-user-title">
        <h2 id="new-user-title">New account</h2>
        <form className="share-form" onSubmit={submit} aria-label="Create an account">
          <label>
            Username
            <input value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="off" />
          </label>
          <label>
            Password
            <input
              type="password"
              value={password}
              minLength={8}
              onChange={(e) => setPassword(e.target.value)}
              autoComplete="new-password"
            />
          </label>
          <label className="inline">
            <input type="checkbox" checked={isAdmin} onChange={(e) => setIsAdmin(e.target.checked)} />
            Admin
          </label>
          <button type="submit" className="primary" disabled={!username.trim() || password.length < 8 || create.isPending}>
            Create account
          </button>
        </form>
      </section>
      {message && (
        <p role="status" className="success">
          {message}
        </p>
      )}
      {error && (
        <Alert error={error} />
      )}
      <section className="card" aria-labelledby="users-title">
        <h2 id="users-title">Accounts</h2>
        {users.data && (
          <Table label="Accounts" columns={columns} rows={users.data} rowKey={(user) => user.id} />
        )}
      </section>
    </main>
  );
}
