import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../../../api/client";
import { unwrap } from "../../../api/errors";
import { setToken, useToken } from "../../../api/session";

export function useLogin() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (credentials: { username: string; password: string }) =>
      unwrap(await api.POST("/api/v1/auth/login", { body: credentials })),
    onSuccess: (issued) => {
      queryClient.clear();
      queryClient.setQueryData(["me"], issued.user);
      setToken(issued.access_token);
    },
  });
}

export function useLogout() {
  const queryClient = useQueryClient();
  return () => {
    setToken(null);
    queryClient.clear();
  };
}

export function useMe() {
  const token = useToken();
  return useQuery({
    queryKey: ["me"],
    queryFn: async () => unwrap(await api.GET("/api/v1/users/me")),
    enabled: token !== null,
    staleTime: 5 * 60_000,
  });
}
