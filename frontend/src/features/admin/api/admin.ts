import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";

export type AdminUser = Schemas["AdminUserPublic"];

const usersKey = ["admin", "users"] as const;

export function useUsers() {
  return useQuery({ queryKey: usersKey, queryFn: async () => unwrap(await api.GET("/api/v1/admin/users")) });
}

export function useCreateUser() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: { username: string; password: string; is_admin: boolean }) =>
      unwrap(await api.POST("/api/v1/admin/users", { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: usersKey }),
  });
}

export function useUpdateUser() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, ...body }: { id: number; is_admin?: boolean; password?: string }) =>
      unwrap(await api.PATCH("/api/v1/admin/users/{user_id}", { params: { path: { user_id: id } }, body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: usersKey }),
  });
}

export function useDeleteUser() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, transferTo }: { id: number; transferTo?: string }) => {
      const result = await api.DELETE("/api/v1/admin/users/{user_id}", {
        params: { path: { user_id: id }, query: transferTo ? { transfer_to: transferTo } : {} },
      });
      if (!result.response.ok) unwrap(result);
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: usersKey }),
  });
}
