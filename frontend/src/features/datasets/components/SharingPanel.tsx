import { useId, useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { useShare, useShares, useTransfer, useUnshare, type ShareRole } from "../api/datasets";
import { Alert } from "../../../components/ui/Alert";
import { EmptyState } from "../../../components/ui/EmptyState";
import { Table } from "../../../components/ui/Table";
type Share = NonNullable<ReturnType<typeof useShares>["data"]>[number];

const ROLE_HELP: Record<ShareRole, string> = {
  viewer: "reads the pairs and scores and exports",
  reviewer: "also flags, keeps, swaps and writes notes",
};

/** The owner's list of who else sees the dataset, as what; share with a username, change a
 * role, stop sharing. */
export function SharingPanel({ datasetId }: { datasetId: number }) {
  const shares = useShares(datasetId);
  const share = useShare(datasetId);
  const unshare = useUnshare(datasetId);
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<ShareRole>("viewer");
  const titleId = useId();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!username.trim()) return;
    share.mutate({ username: username.trim(), role }, { onSuccess: () => setUsername("") });
  };
  const error = shares.error ?? share.error ?? unshare.error;

  return (
    <section className="card sharing" aria-labelledby={titleId}>
      <h2 id={titleId}>Sharing</h2>
      <p className="muted small">
        A viewer {ROLE_HELP.viewer}; a reviewer {ROLE_HELP.reviewer}. Only you delete it, launch audits, share it and
        hand it to another owner.
      </p>
      {shares.data && (
        <Table
          label="People this dataset is shared with"
          rows={shares.data}
          rowKey={(row) => row.user_id}
          empty={<EmptyState>Only you can see this dataset.</EmptyState>}
          columns={[
            { key: "user", header: "User", cell: (row: Share) => row.username },
            {
              key: "role",
              header: "Role",
              cell: (row: Share) => (
                <select
                  aria-label={`Role of ${row.username}`}
                  value={row.role}
                  onChange={(e) => share.mutate({ username: row.username, role: e.target.value as ShareRole })}
                >
                  <option value="viewer">viewer</option>
                  <option value="reviewer">reviewer</option>
                </select>
              ),
            },
            {
              key: "actions",
              header: <span className="visually-hidden">Actions</span>,
              className: "actions",
              cell: (row: Share) => (
                <button
                  type="button"
                  aria-label={`Stop sharing with ${row.username}`}
                  onClick={() => unshare.mutate(row.user_id)}
                  disabled={unshare.isPending}
                >
                  Stop sharing
                </button>
              ),
            },
          ]}
        />
      )}
      <form className="share-form" onSubmit={submit} aria-label="Share the dataset">
        <label>
          Username
          <input value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="off" />
        </label>
        <label>
          Share as
          <select value={role} onChange={(e) => setRole(e.target.value as ShareRole)}>
            <option value="viewer">viewer</option>
            <option value="reviewer">reviewer</option>
          </select>
        </label>
        <button type="submit" disabled={!username.trim() || share.isPending}>
          Share
        </button>
      </form>
      {error && (
        <Alert error={error} />
      )}
      <TransferForm datasetId={datasetId} />
    </section>
  );
}

/** Hand the dataset to another account (with its jobs, scores, review history and shares); the
 * owner keeps no access, so the page returns to the dataset list. */
function TransferForm({ datasetId }: { datasetId: number }) {
  const transfer = useTransfer(datasetId);
  const navigate = useNavigate();
  const [heir, setHeir] = useState("");

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const username = heir.trim();
    if (!username) return;
    const sure = window.confirm(
      `Make ${username} the owner of this dataset, with its jobs, scores and review history? You keep no access unless they share it back.`,
    );
    if (!sure) return;
    transfer.mutate(username, { onSuccess: () => void navigate("/datasets", { replace: true }) });
  };

  return (
    <form className="share-form" onSubmit={submit} aria-label="Transfer ownership">
      <label>
        New owner
        <input value={heir} onChange={(e) => setHeir(e.target.value)} autoComplete="off" />
      </label>
      <button type="submit" className="danger" disabled={!heir.trim() || transfer.isPending}>
        Transfer ownership
      </button>
      {transfer.isError && (
        <Alert title="Could not transfer" error={transfer.error} />
      )}
    </form>
  );
}
