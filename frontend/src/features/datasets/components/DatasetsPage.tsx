import { errorMessage, problemCount, rowProblems } from "../../../api/errors";
import { previewUpload, useDatasets, useDeleteDataset, useUploadDataset, type Dataset } from "../api/datasets";
import { BadRowList } from "./BadRowList";
import { DatasetList } from "./DatasetList";
import { UploadZone } from "./UploadZone";
import { count } from "../../../components/ui/count";
import { Alert } from "../../../components/ui/Alert";

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
        onUpload={(file, name, skipBadRows, mapping) => upload.mutateAsync({ file, name, skipBadRows, mapping })}
        onPreview={previewUpload}
        onFileChosen={() => upload.reset()}
        busy={upload.isPending}
        error={upload.isError ? errorMessage(upload.error) : null}
        badRows={upload.isError ? rowProblems(upload.error) : []}
        badRowCount={upload.isError ? problemCount(upload.error).count : 0}
        badRowsCapped={upload.isError ? problemCount(upload.error).capped : false}
      />
      {upload.isSuccess && (
        <div role="status" className="success">
          <p>
            Uploaded “{upload.data.name}”: {count(upload.data.n_pairs, "pair")}
            {upload.data.n_skipped ? `; skipped ${count(upload.data.n_skipped, "bad row")}` : ""}.
          </p>
          {(upload.data.skipped ?? []).length > 0 && (
            <BadRowList rows={upload.data.skipped ?? []} total={upload.data.n_skipped ?? 0} />
          )}
        </div>
      )}
      <section aria-labelledby="datasets-title" className="card">
        <h2 id="datasets-title">Your datasets</h2>
        {datasets.isPending && <p className="muted">Loading…</p>}
        {datasets.isError && (
          <Alert title="Could not load datasets" error={datasets.error} />
        )}
        {remove.isError && (
          <Alert title="Could not delete" error={remove.error} />
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
