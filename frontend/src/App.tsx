import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { BrowserRouter, Link, Navigate, Route, Routes, useLocation, useSearchParams } from "react-router";
import { loggedOutHere, useSignedInAs } from "./api/session";
import { AdminPage } from "./features/admin";
import { LoginPage, TokensPage, UserMenu } from "./features/auth";
import { DatasetsPage } from "./features/datasets";
import { DatasetPage } from "./pages/DatasetPage";
import { loginPath, safeNext } from "./routing";

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: 1, refetchOnWindowFocus: false },
    },
  });
}

/**
 * One query cache per signed-in user: logging in, out, or as someone else in another tab starts
 * a fresh cache, so nothing fetched for the last user stays. The cache is swapped while
 * rendering, and the tree below remounts with it (`generation` is its key), so every query is
 * created in, and fetched by, the cache that will keep its answer. (Clearing one shared cache in
 * an effect instead ran after the pages' own effects had started their fetches: it removed and
 * silently cancelled those queries, and the pages waited on them forever, which lost the user,
 * their role and the data on every full page load.)
 */
function useQueryClientFor(user: string | null): { client: QueryClient; generation: number } {
  const [scope, setScope] = useState(() => ({ user, client: makeQueryClient(), generation: 0 }));
  let current = scope;
  if (scope.user !== user) {
    current = { user, client: makeQueryClient(), generation: scope.generation + 1 };
    setScope(current); // React renders again at once, before anything below mounts
  }
  // The replaced cache belongs to a tree that has unmounted: end its fetches and timers.
  const previous = useRef(current.client);
  useEffect(() => {
    if (previous.current !== current.client) previous.current.clear();
    previous.current = current.client;
  }, [current.client]);
  return current;
}

function SignedIn() {
  return (
    <>
      <header className="topbar">
        <Link to="/datasets" className="brand">
          prefaudit
        </Link>
        <UserMenu />
      </header>
      <Routes>
        <Route path="/" element={<Navigate to="/datasets" replace />} />
        <Route path="/login" element={<AfterLogin />} />
        <Route path="/datasets" element={<DatasetsPage />} />
        <Route path="/datasets/:datasetId" element={<DatasetPage />} />
        <Route path="/tokens" element={<TokensPage />} />
        <Route path="/admin" element={<AdminPage />} />
        <Route path="*" element={<Navigate to="/datasets" replace />} />
      </Routes>
    </>
  );
}

/** Signed in on the login page (just now, or from a bookmark): on to `next`, if it is a page of
 * the app, else the datasets. */
function AfterLogin() {
  const [params] = useSearchParams();
  return <Navigate to={safeNext(params.get("next")) ?? "/datasets"} replace />;
}

/** Signed out: the login page, which any other page sends to with itself as `next` (unless this
 * tab just logged out). */
function SignedOut() {
  const location = useLocation();
  if (location.pathname === "/login") return <LoginPage />;
  const here = loggedOutHere() ? null : `${location.pathname}${location.search}${location.hash}`;
  return <Navigate to={loginPath(here)} replace />;
}

function Session() {
  const user = useSignedInAs();
  const { client, generation } = useQueryClientFor(user);
  return (
    <QueryClientProvider client={client} key={generation}>
      {user === null ? <SignedOut /> : <SignedIn />}
    </QueryClientProvider>
  );
}

export function App() {
  return (
    <BrowserRouter>
      <Session />
    </BrowserRouter>
  );
}
