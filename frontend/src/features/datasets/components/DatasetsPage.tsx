import { errorMessage } from "../../../api/errors";
import { useDatasets, useDeleteDataset, useUploadDataset, type Dataset } from "../api/datasets";
import { DatasetList } from "./DatasetList";
import { UploadZone } from "./UploadZone";

export function DatasetsPage() {
  const datasets = useDatasets();
  const upload = useUploadDataset();
  const remove = useDeleteDataset();

  const confirmDelete = (dataset: Dataset) => {
    if (window.confirm(`Delete "${dataset.name}" with its jobs, scores and flags?`)) {
      remove.mutate(dataset.id);
    }
  };

  return (
    <main className="page">
      <h1>Datasets</h1>
      <UploadZone
        onUpload={(file, name) => upload.mutateAsync({ file, name })}
        busy={upload.isPending}
        error={upload.isError ? errorMessage(upload.error) : null}
      />
      {upload.isSuccess && (
        <p role="status" className="success">
          Uploaded “{upload.data.name}”: {upload.data.n_pairs.toLocaleString()} pairs.
        </p>
      )}
      <section aria-labelledby="datasets-title" className="card">
        <h2 id="datasets-title">Your datasets</h2>
        {datasets.isPending && <p className="muted">Loading…</p>}
        {datasets.isError && (
          <p role="alert" className="error">
            Could not load datasets: {errorMessage(datasets.error)}
          </p>
        )}
        {remove.isError && (
          <p role="alert" className="error">
            Could not delete: {errorMessage(remove.error)}
          </p>
        )}
        {datasets.data && (
          <DatasetList
            datasets={datasets.data.items}
            onDelete={confirmDelete}
            deletingId={remove.isPending ? remove.variables : null}
          />
        )}
      </section>
    </main>
  );
}
