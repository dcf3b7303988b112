import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { filenameFrom, saveBlob } from "../../../api/download";
import { ApiError, unwrap } from "../../../api/errors";

export type Dataset = Schemas["DatasetPublic"];
export type ExportFormat = "jsonl" | "csv" | "parquet";

export const datasetKeys = {
  all: ["datasets"] as const,
  one: (id: number) => ["datasets", id] as const,
};

export function useDatasets() {
  return useQuery({
    queryKey: datasetKeys.all,
    queryFn: async () => unwrap(await api.GET("/api/v1/datasets")),
  });
}

export function useDataset(id: number) {
  return useQuery({
    queryKey: datasetKeys.one(id),
    queryFn: async () =>
      unwrap(await api.GET("/api/v1/datasets/{dataset_id}", { params: { path: { dataset_id: id } } })),
  });
}

const SCHEMA_LABELS: Record<string, string> = {
  hh_transcript: "HH transcripts",
  prompt_chosen_rejected: "prompt / chosen / rejected",
  chat_messages: "chat messages",
  shp: "SHP (A / B + label)",
  ultrafeedback: "UltraFeedback",
};

/** How a dataset's records were read, in words. */
export function schemaLabel(kind: string): string {
  return SCHEMA_LABELS[kind] ?? kind;
}

/** Which of the file's columns hold the pair; a field left out is read as named. */
export type ColumnMapping = Partial<Record<"prompt" | "chosen" | "rejected", string>>;
export type UploadPreview = Schemas["UploadPreview"];

function uploadForm(file: File, fields: Record<string, string>): FormData {
  const form = new FormData();
  form.append("file", file, file.name);
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  return form;
}

function mappingField(mapping: ColumnMapping): Record<string, string> {
  return Object.keys(mapping).length > 0 ? { mapping: JSON.stringify(mapping) } : {};
}

/** Bytes of a large line-based file the preview sends: its first records, not the whole file. */
export const PREVIEW_HEAD_BYTES = 4 * 1024 * 1024;

/** The head of an uncompressed JSONL / CSV / TSV file, cut after its last whole line; other
 * files (JSON arrays, Parquet, Arrow, gzip) are read whole, as the upload reads them. */
export async function previewHead(file: File, limit = PREVIEW_HEAD_BYTES): Promise<File> {
  if (file.size <= limit || !/\.(jsonl|ndjson|csv|tsv)$/i.test(file.name)) return file;
  const head = new Uint8Array(await file.slice(0, limit).arrayBuffer());
  const end = head.lastIndexOf(10); // "\n"
  return new File([end > 0 ? head.slice(0, end + 1) : head], file.name, { type: file.type });
}

/** What an upload of `file` with `mapping` would store (its first pairs); stores nothing. */
export async function previewUpload(whole: File, mapping: ColumnMapping = {}): Promise<UploadPreview> {
  const file = await previewHead(whole);
  const fields = mappingField(mapping);
  return unwrap(
    await api.POST("/api/v1/datasets/preview", {
      // The spec types a binary form field as string; the serializer sends the File.
      body: { file: file as unknown as string, ...fields },
      bodySerializer: () => uploadForm(file, fields),
    }),
  );
}

export function useUploadDataset() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({
      file,
      name,
      skipBadRows = false,
      mapping = {},
    }: {
      file: File;
      name: string;
      skipBadRows?: boolean;
      mapping?: ColumnMapping;
    }) => {
      const fields = { name, on_bad_rows: skipBadRows ? "skip" : "reject", ...mappingField(mapping) };
      return unwrap(
        await api.POST("/api/v1/datasets", {
          body: { file: file as unknown as string, ...fields } as { file: string; name: string },
          bodySerializer: () => uploadForm(file, fields),
        }),
      );
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: datasetKeys.all }),
  });
}

export function useDeleteDataset() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: number) =>
      unwrap(
        await api.DELETE("/api/v1/datasets/{dataset_id}", {
          params: { path: { dataset_id: id } },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: datasetKeys.all }),
  });
}

/** A file fetched with the auth header, saved from a blob URL under the server's filename. */
async function download(
  request: Promise<{ data?: unknown; error?: unknown; response: Response }>,
  fallback: string,
): Promise<string> {
  const { data, error, response } = await request;
  if (error !== undefined || !response.ok || !(data instanceof Blob)) {
    throw new ApiError(response.status, error);
  }
  const filename = filenameFrom(response.headers.get("Content-Disposition"), fallback);
  saveBlob(data, filename);
  return filename;
}

/** Downloads the cleaned dataset: fetched with the auth header, then saved from a blob URL. */
export interface ExportOptions {
  excludeFlagged: boolean;
  applySwaps: boolean;
  /** Only pairs with this tag (the pairs list's `tag=`); "" for no such filter. */
  tag?: string;
  /** Leave out pairs with this tag (`not_tag=`); "" for none. */
  notTag?: string;
  /** Add soft-label columns from this audit's or judge job's scores. */
  softLabelsJob?: number | null;
  /** With softLabelsJob: every pair, none of the job's ambiguous ones, or only them. */
  ambiguous?: AmbiguousMode;
}

export type AmbiguousMode = "include" | "exclude" | "only";

/** The export's query parameters for `options` (an unset filter sends nothing). */
export function exportQuery(format: ExportFormat, options: ExportOptions) {
  const soft = options.softLabelsJob ?? null;
  return {
    format,
    exclude_flagged: options.excludeFlagged,
    apply_swaps: options.applySwaps,
    ...(options.tag ? { tag: [options.tag] } : {}),
    ...(options.notTag ? { not_tag: [options.notTag] } : {}),
    ...(soft !== null ? { soft_labels_job: soft, ambiguous: options.ambiguous ?? "include" } : {}),
  };
}

export function useExportDataset(dataset: Dataset) {
  return useMutation({
    mutationFn: async ({
      format,
      options = { excludeFlagged: true, applySwaps: true },
    }: {
      format: ExportFormat;
      options?: ExportOptions;
    }) => {
      const request = api.GET("/api/v1/datasets/{dataset_id}/export", {
        params: {
          path: { dataset_id: dataset.id },
          query: exportQuery(format, options),
        },
        parseAs: "blob",
      });
      return download(request, `${dataset.name}.cleaned.${format}`);
    },
  });
}

/** Download the review log: every reviewed pair's state, note, who and when. */
export function useExportReviewLog(dataset: Dataset) {
  return useMutation({
    mutationFn: async (format: "jsonl" | "csv") => {
      const request = api.GET("/api/v1/datasets/{dataset_id}/review-log", {
        params: { path: { dataset_id: dataset.id }, query: { format } },
        parseAs: "blob",
      });
      return download(request, `${dataset.name}-review-log.${format}`);
    },
  });
}

export type Share = Schemas["SharePublic"];
export type ShareRole = Share["role"];

const shareKey = (datasetId: number) => ["datasets", datasetId, "shares"] as const;

/** Who else sees the dataset (its owner only). */
export function useShares(datasetId: number, enabled = true) {
  return useQuery({
    queryKey: shareKey(datasetId),
    enabled,
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}/shares", { params: { path: { dataset_id: datasetId } } }),
      ),
  });
}

export function useShare(datasetId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: { username: string; role: ShareRole }) =>
      unwrap(
        await api.PUT("/api/v1/datasets/{dataset_id}/shares", {
          params: { path: { dataset_id: datasetId } },
          body,
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: shareKey(datasetId) }),
  });
}

export function useUnshare(datasetId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (userId: number) => {
      const result = await api.DELETE("/api/v1/datasets/{dataset_id}/shares/{user_id}", {
        params: { path: { dataset_id: datasetId, user_id: userId } },
      });
      if (!result.response.ok) unwrap(result);
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: shareKey(datasetId) }),
  });
}

/** Hand the dataset (with its jobs, scores, review history and shares) to another account. The
 * caller keeps no access afterwards: the list is reloaded, and the dataset's own queries are left
 * alone (refetched they would 404 under the page before it moves away). */
export function useTransfer(datasetId: number) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (username: string) =>
      unwrap(
        await api.POST("/api/v1/datasets/{dataset_id}/transfer", {
          params: { path: { dataset_id: datasetId } },
          body: { username },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: datasetKeys.all, exact: true }),
  });
}
