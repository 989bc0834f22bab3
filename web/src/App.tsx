import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { HashRouter, NavLink, Navigate, Route, Routes } from "react-router-dom";
import { ApiError, logout } from "./api/client";
import { MeProvider, hasRole, useMe, useMeQuery, useSessionPresent } from "./auth";
import { ErrorMessage, Loading } from "./components/common";
import { DqPage } from "./governance/DqPage";
import { Admin } from "./screens/Admin";
import { ExceptionDetail } from "./screens/ExceptionDetail";
import { Exceptions } from "./screens/Exceptions";
import { LoanView } from "./screens/LoanView";
import { Login } from "./screens/Login";
import { RunDetail } from "./screens/RunDetail";
import { Runs } from "./screens/Runs";
import { Approvals } from "./review/Approvals";
import { CaseView } from "./review/CaseView";
import { NotificationBell, Notifications } from "./review/Notifications";
import { ReviewQueue } from "./review/ReviewQueue";

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
        refetchOnWindowFocus: false,
      },
    },
  });
}

/** The sections of the workbench; each names who sees it. New sections (review queue, cases,
 * notifications, corrections…) slot in here with their routes below. */
const SECTIONS: { to: string; label: string; roles: string[] }[] = [
  { to: "/runs", label: "Runs", roles: ["admin", "analyst", "senior_analyst", "sales_team"] },
  { to: "/exceptions", label: "Exceptions", roles: ["admin", "analyst", "senior_analyst", "sales_team"] },
  { to: "/dq", label: "Data quality", roles: ["admin", "analyst", "senior_analyst", "sales_team"] },
  { to: "/review", label: "Review", roles: ["admin", "analyst", "senior_analyst", "sales_team"] },
  { to: "/approvals", label: "Approvals", roles: ["admin", "senior_analyst"] },
  { to: "/admin", label: "Admin", roles: ["admin"] },
];

function Shell() {
  const me = useMe();
  return (
    <>
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Loan Engine</span>
        <nav aria-label="Sections">
          {SECTIONS.filter((section) => hasRole(me, ...section.roles)).map((section) => (
            <NavLink key={section.to} to={section.to}>
              {section.label}
            </NavLink>
          ))}
        </nav>
        <NotificationBell />
        <span className="who">
          {me.username} ({me.role.replace("_", " ")}
          {me.team_id ? `, ${me.team_id}` : ""})
        </span>
        <button type="button" onClick={() => void logout()}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Routes>
          <Route path="/" element={<Navigate to="/runs" replace />} />
          <Route path="/runs" element={<Runs />} />
          <Route path="/runs/:runId" element={<RunDetail />} />
          <Route path="/runs/:runId/loans/:loanId" element={<LoanView />} />
          <Route path="/exceptions" element={<Exceptions />} />
          <Route path="/exceptions/:exceptionId" element={<ExceptionDetail />} />
          <Route path="/dq" element={<DqPage />} />
          <Route path="/notifications" element={<Notifications />} />
          <Route path="/review" element={<ReviewQueue />} />
          <Route path="/review/cases/:caseId" element={<CaseView />} />
          {hasRole(me, "admin", "senior_analyst") && <Route path="/approvals" element={<Approvals />} />}
          {hasRole(me, "admin") && <Route path="/admin/*" element={<Admin />} />}
          <Route path="*" element={<p>Nothing here. <NavLink to="/runs">Go to runs</NavLink>.</p>} />
        </Routes>
      </main>
    </>
  );
}

function Gate() {
  const present = useSessionPresent();
  const me = useMeQuery(present);
  if (!present) return <Login />;
  if (me.isPending) return <Loading label="Signing in…" />;
  if (me.error || !me.data)
    return (
      <main>
        <ErrorMessage error={me.error} />
        <button type="button" onClick={() => void logout()}>
          Sign in again
        </button>
      </main>
    );
  return (
    <MeProvider me={me.data}>
      <Shell />
    </MeProvider>
  );
}

export function App({ client = makeQueryClient() }: { client?: QueryClient }) {
  return (
    <QueryClientProvider client={client}>
      <HashRouter>
        <Gate />
      </HashRouter>
    </QueryClientProvider>
  );
}
