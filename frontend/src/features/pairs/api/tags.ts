import { useQuery } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";

/** An exact-check tag (GET /methods/tags): the server's registry, never a copy of it. */
export type TagInfo = Schemas["TagInfo"];

/** Every tag a pair can carry, with its label and meaning. */
export function useTags() {
  return useQuery({
    queryKey: ["methods", "tags"],
    queryFn: async () => unwrap(await api.GET("/api/v1/methods/tags")),
    staleTime: Infinity,
  });
}

/** How many of the dataset's pairs carry each tag (its summary's `tag_counts`). */
export function useTagCounts(datasetId: number | undefined) {
  return useQuery({
    queryKey: ["pairs", datasetId ?? 0, "tag-counts"],
    enabled: datasetId !== undefined,
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/datasets/{dataset_id}", { params: { path: { dataset_id: datasetId ?? 0 } } }),
      ).tag_counts ?? {},
  });
}
