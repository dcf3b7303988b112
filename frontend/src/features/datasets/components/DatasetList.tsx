import { Link } from "react-router";
import { EmptyState } from "../../../components/ui/EmptyState";
import { Table, type Column } from "../../../components/ui/Table";
import { schemaLabel, type Dataset } from "../api/datasets";

interface Props {
  datasets: Dataset[];
  onDelete: (dataset: Dataset) => void;
  deletingId?: number | null;
}

export function DatasetList({ datasets, onDelete, deletingId }: Props) {
  const columns: Column<Dataset>[] = [
    {
      key: "name",
      header: "Name",
      cell: (dataset) => (
        <>
          <Link to={`/datasets/${dataset.id}`}>{dataset.name}</Link>
          {dataset.role !== "owner" && (
            <span className="tag shared" title={`Shared with you by ${dataset.owner_name}`}>
              {dataset.role} · {dataset.owner_name}
            </span>
          )}
        </>
      ),
    },
    { key: "file", header: "File", cell: (dataset) => dataset.filename, className: "muted" },
    { key: "schema", header: "Schema", cell: (dataset) => <span className="tag">{schemaLabel(dataset.schema_kind)}</span> },
    { key: "pairs", header: "Pairs", cell: (dataset) => dataset.n_pairs.toLocaleString(), className: "num" },
    {
      key: "uploaded",
      header: "Uploaded",
      cell: (dataset) => new Date(dataset.created_at).toLocaleString(),
      className: "muted",
    },
    {
      key: "actions",
      header: <span className="visually-hidden">Actions</span>,
      className: "actions",
      cell: (dataset) =>
        dataset.role === "owner" && (
          <button
            type="button"
            className="danger"
            aria-label={`Delete ${dataset.name}`}
            disabled={deletingId === dataset.id}
            onClick={() => onDelete(dataset)}
          >
            Delete
          </button>
        ),
    },
  ];
  return (
    <Table
      label="Datasets"
      className="datasets"
      columns={columns}
      rows={datasets}
      rowKey={(dataset) => dataset.id}
      empty={<EmptyState>No datasets yet. Upload one above.</EmptyState>}
    />
  );
}
