import { useQuery } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";

export type SavedModel = Schemas["SavedModel"];

/** The reward models the user's earlier audits saved (save_model), newest first. */
export function useSavedModels() {
  return useQuery({
    queryKey: ["saved-models"] as const,
    queryFn: async () => unwrap(await api.GET("/api/v1/saved-models")),
  });
}
