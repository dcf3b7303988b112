import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { BrowserRouter, Link, Navigate, Route, Routes } from "react-router";
import { useSignedIn, useSignedInAs } from "./api/session";
import { AdminPage } from "./features/admin";
import { LoginPage, TokensPage, UserMenu } from "./features/auth";
import { DatasetsPage } from "./features/datasets";
import { DatasetPage } from "./pages/DatasetPage";

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: 1, refetchOnWindowFocus: false },
    },
  });
}

function Shell() {
  const signedIn = useSignedIn();
  if (!signedIn) return <LoginPage />;
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
        <Route path="/datasets" element={<DatasetsPage />} />
        <Route path="/datasets/:datasetId" element={<DatasetPage />} />
        <Route path="/tokens" element={<TokensPage />} />
        <Route path="/admin" element={<AdminPage />} />
        <Route path="*" element={<Navigate to="/datasets" replace />} />
      </Routes>
    </>
  );
}

export function App() {
  const [queryClient] = useState(makeQueryClient);
  // Another tab signing out and in as someone else: nothing cached for the last user stays.
  const user = useSignedInAs();
  useEffect(() => queryClient.clear(), [queryClient, user]);
  return (
    <QueryClientProvider client={queryClient}>
      <BrowserRouter>
        <Shell />
      </BrowserRouter>
    </QueryClientProvider>
  );
}
