import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Schemas } from "../../../api/client";
import { unwrap } from "../../../api/errors";
import { setSignedIn, signOut, useSignedIn } from "../../../api/session";

/** Logs in with the session cookie. Signed in, the app starts a fresh query cache for this user
 * (App.tsx) and the login page moves on to its `next` page. */
export function useLogin() {
  return useMutation({
    mutationFn: async (credentials: { username: string; password: string }) =>
      unwrap(await api.POST("/api/v1/auth/login", { body: { ...credentials, cookie: true } })),
    onSuccess: (issued) => setSignedIn(true, issued.user.username),
  });
}

/** Ends the session: the server revokes its token and clears the cookies; the browser forgets
 * it is signed in even when the server cannot be reached (and the app drops this user's query
 * cache). */
export function useLogout() {
  return async () => {
    try {
      await api.POST("/api/v1/auth/logout");
    } finally {
      signOut();
    }
  };
}

export type Token = Schemas["TokenPublic"];

export function useTokens() {
  return useQuery({
    queryKey: ["tokens"],
    queryFn: async () => unwrap(await api.GET("/api/v1/tokens")),
  });
}

export function useCreateToken() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: { name: string; expires_in_days: number | null; password?: string }) =>
      unwrap(await api.POST("/api/v1/tokens", { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["tokens"] }),
  });
}

export function useRevokeToken() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (tokenId: number) => {
      const result = await api.DELETE("/api/v1/tokens/{token_id}", {
        params: { path: { token_id: tokenId } },
      });
      if (!result.response.ok) unwrap(result);
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["tokens"] }),
  });
}

export function useMe() {
  const signedIn = useSignedIn();
  return useQuery({
    queryKey: ["me"],
    queryFn: async () => unwrap(await api.GET("/api/v1/users/me")),
    enabled: signedIn,
    staleTime: 5 * 60_000,
  });
}

/** Change one's password (the current one is needed); the server ends every other session and
 * token of the account, so the token list is reloaded. */
export function useChangePassword() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: { current_password: string; new_password: string }) => {
      const result = await api.PUT("/api/v1/users/me/password", { body });
      if (!result.response.ok) unwrap(result);
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["tokens"] }),
  });
}
