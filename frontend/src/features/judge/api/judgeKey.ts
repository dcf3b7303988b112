// The caller's own judge API key (backend/routers/secrets.py): whether it is set, setting it and
// clearing it. The key is sent once and never comes back: the API answers only set / updated_at.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";

export type SecretStatus = Schemas["SecretStatus"];

const judgeKeyKey = ["me", "secrets", "judge-api-key"] as const;
const PATH = "/api/v1/me/secrets/judge-api-key";

export function useJudgeKeyStatus() {
  return useQuery({
    queryKey: judgeKeyKey,
    queryFn: async () => unwrap(await api.GET(PATH)),
  });
}

export function useSetJudgeKey() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (value: string) => unwrap(await api.PUT(PATH, { body: { value } })),
    onSuccess: (status) => queryClient.setQueryData(judgeKeyKey, status),
  });
}

export function useClearJudgeKey() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async () => {
      const result = await api.DELETE(PATH);
      if (!result.response.ok) unwrap(result);
    },
    onSuccess: () => queryClient.setQueryData<SecretStatus>(judgeKeyKey, { set: false, updated_at: null }),
  });
}
