import { Link } from "react-router";
import { schemaLabel, type Dataset } from "../api/datasets";

interface Props {
  datasets: Dataset[];
  onDelete: (dataset: Dataset) => void;
  deletingId?: number | null;
}

export function DatasetList({ datasets, onDelete, deletingId }: Props) {
  if (datasets.length === 0) {
    return <p className="muted">No datasets yet. Upload one above.</p>;
  }
  return (
    <table className="datasets">
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">File</th>
          <th scope="col">Schema</th>
          <th scope="col" className="num">
            Pairs
          </th>
          <th scope="col">Uploaded</th>
          <th scope="col">
            <span className="visually-hidden">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {datasets.map((dataset) => (
          <tr key={dataset.id}>
            <td>
              <Link to={`/datasets/${dataset.id}`}>{dataset.name}</Link>
              {dataset.role !== "owner" && (
                <span className="tag shared" title={`Shared with you by ${dataset.owner_name}`}>
                  {dataset.role} · {dataset.owner_name}
                </span>
              )}
            </td>
            <td className="muted">{dataset.filename}</td>
            <td>
              <span className="tag">{schemaLabel(dataset.schema_kind)}</span>
            </td>
            <td className="num">{dataset.n_pairs.toLocaleString()}</td>
            <td className="muted">{new Date(dataset.created_at).toLocaleString()}</td>
            <td className="actions">
              {dataset.role === "owner" && (
              <button
                type="button"
                className="danger"
                aria-label={`Delete ${dataset.name}`}
                disabled={deletingId === dataset.id}
                onClick={() => onDelete(dataset)}
              >
                Delete
              </button>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
