import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { NavLink, Navigate, Route, Routes } from "react-router-dom";
import { api, data, type User } from "../api/client";
import { Empty, ErrorMessage, Loading, Pager, formatDate, useCursorPager } from "../components/common";

const PAGE = 25;
type Role = User["role"];
const ROLES: Role[] = ["admin", "analyst", "senior_analyst", "sales_team"];

/** Offset paging for the lists that page with skip/limit only. */
function useOffset() {
  const [skip, setSkip] = useState(0);
  return { skip, setSkip };
}

function OffsetPager({ skip, setSkip, count, label }: { skip: number; setSkip: (n: number) => void; count: number; label: string }) {
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button type="button" onClick={() => setSkip(Math.max(0, skip - PAGE))} disabled={skip === 0}>
        Previous page
      </button>
      <span>Page {skip / PAGE + 1}</span>
      <button type="button" onClick={() => setSkip(skip + PAGE)} disabled={count < PAGE}>
        Next page
      </button>
    </nav>
  );
}

export function Admin() {
  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Administration</h1>
      <nav className="tabs" aria-label="Administration">
        <NavLink to="users">Users</NavLink>
        <NavLink to="teams">Teams</NavLink>
        <NavLink to="dead-letters">Dead letters</NavLink>
        <NavLink to="audit">Audit log</NavLink>
      </nav>
      <Routes>
        <Route index element={<Navigate to="users" replace />} />
        <Route path="users" element={<Users />} />
        <Route path="teams" element={<Teams />} />
        <Route path="dead-letters" element={<DeadLetters />} />
        <Route path="audit" element={<Audit />} />
      </Routes>
    </section>
  );
}

function Users() {
  const client = useQueryClient();
  const { skip, setSkip } = useOffset();
  const users = useQuery({
    queryKey: ["users", skip],
    queryFn: async () => data(await api.GET("/api/admin/users", { params: { query: { skip, limit: PAGE } } })),
  });
  const [form, setForm] = useState({ username: "", email: "", password: "", role: "analyst" as Role, team_id: "" });
  const create = useMutation({
    mutationFn: async () => data(await api.POST("/api/admin/users", { body: { ...form, team_id: form.team_id || null } })),
    onSuccess: () => {
      setForm({ username: "", email: "", password: "", role: "analyst", team_id: "" });
      void client.invalidateQueries({ queryKey: ["users"] });
    },
  });
  const update = useMutation({
    mutationFn: async ({ id, body }: { id: string; body: { role?: Role; is_active?: boolean } }) =>
      data(await api.PATCH("/api/admin/users/{user_id}", { params: { path: { user_id: id } }, body })),
    onSuccess: () => client.invalidateQueries({ queryKey: ["users"] }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <>
      <h2>Users</h2>
      <form className="card fields" onSubmit={submit} aria-label="Create a user">
        <label>
          Username
          <input value={form.username} onChange={(e) => setForm({ ...form, username: e.target.value })} required />
        </label>
        <label>
          E-mail
          <input type="email" value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} required />
        </label>
        <label>
          Password
          <input type="password" value={form.password} onChange={(e) => setForm({ ...form, password: e.target.value })} required autoComplete="new-password" />
        </label>
        <label>
          Role
          <select aria-label="Role" value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value as Role })}>
            {ROLES.map((role) => (
              <option key={role}>{role}</option>
            ))}
          </select>
        </label>
        <label>
          Team
          <input value={form.team_id} onChange={(e) => setForm({ ...form, team_id: e.target.value })} placeholder="none" />
        </label>
        <button type="submit" disabled={create.isPending}>
          Create user
        </button>
      </form>
      <ErrorMessage error={create.error ?? update.error} />
      <ErrorMessage error={users.error} />
      {users.isPending && <Loading />}
      {users.data && users.data.length === 0 && <Empty>No users on this page.</Empty>}
      {users.data && users.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Username</th>
              <th scope="col">E-mail</th>
              <th scope="col">Role</th>
              <th scope="col">Team</th>
              <th scope="col">Active</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {users.data.map((user) => (
              <tr key={user.id}>
                <td>{user.username}</td>
                <td>{user.email}</td>
                <td>
                  <select
                    aria-label={`Role of ${user.username}`}
                    value={user.role}
                    onChange={(e) => update.mutate({ id: user.id, body: { role: e.target.value as Role } })}
                  >
                    {ROLES.map((role) => (
                      <option key={role}>{role}</option>
                    ))}
                  </select>
                </td>
                <td>{user.team_id ?? "—"}</td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`${user.username} is active`}
                    checked={user.is_active}
                    onChange={() => update.mutate({ id: user.id, body: { is_active: !user.is_active } })}
                  />
                </td>
                <td>{formatDate(user.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {users.data && <OffsetPager skip={skip} setSkip={setSkip} count={users.data.length} label="Users" />}
    </>
  );
}

function Teams() {
  const client = useQueryClient();
  const { skip, setSkip } = useOffset();
  const teams = useQuery({
    queryKey: ["teams", skip],
    queryFn: async () => data(await api.GET("/api/admin/teams", { params: { query: { skip, limit: PAGE } } })),
  });
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const create = useMutation({
    mutationFn: async () => data(await api.POST("/api/admin/teams", { body: { id: id || null, name } })),
    onSuccess: () => {
      setId("");
      setName("");
      void client.invalidateQueries({ queryKey: ["teams"] });
    },
  });
  return (
    <>
      <h2>Teams</h2>
      <form
        className="card fields"
        aria-label="Create a team"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label>
          Team id
          <input value={id} onChange={(e) => setId(e.target.value)} placeholder="from the name" />
        </label>
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <button type="submit" disabled={create.isPending}>
          Create team
        </button>
      </form>
      <ErrorMessage error={create.error ?? teams.error} />
      {teams.data && teams.data.length === 0 && <Empty>No teams yet.</Empty>}
      {teams.data && teams.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Name</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {teams.data.map((team) => (
              <tr key={team.id}>
                <td>{team.id}</td>
                <td>{team.name}</td>
                <td>{formatDate(team.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {teams.data && <OffsetPager skip={skip} setSkip={setSkip} count={teams.data.length} label="Teams" />}
    </>
  );
}

function DeadLetters() {
  const client = useQueryClient();
  const [limit, setLimit] = useState(50);
  const letters = useQuery({
    queryKey: ["dead-letters", limit],
    queryFn: async () => data(await api.GET("/api/admin/dead-letters", { params: { query: { limit } } })),
  });
  const replay = useMutation({
    mutationFn: async ({ partition, offset }: { partition: number; offset: number }) =>
      data(await api.POST("/api/admin/dead-letters/{partition}/{offset}/replay", { params: { path: { partition, offset } } })),
    onSuccess: () => client.invalidateQueries({ queryKey: ["dead-letters"] }),
  });
  const items = letters.data ?? [];
  return (
    <>
      <h2>Dead letters</h2>
      <ErrorMessage error={letters.error ?? replay.error} />
      {letters.isPending && <Loading />}
      {letters.data && items.length === 0 && <Empty>No dead letters. Every record was processed.</Empty>}
      {items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Partition</th>
              <th scope="col">Offset</th>
              <th scope="col">Details</th>
              <th scope="col">Replay</th>
            </tr>
          </thead>
          <tbody>
            {items.map((letter) => {
              const partition = Number(letter.partition);
              const offset = Number(letter.offset);
              return (
                <tr key={`${partition}/${offset}`}>
                  <td className="num">{partition}</td>
                  <td className="num">{offset}</td>
                  <td>
                    <code>{JSON.stringify(letter).slice(0, 300)}</code>
                  </td>
                  <td>
                    <button type="button" onClick={() => replay.mutate({ partition, offset })} disabled={replay.isPending}>
                      Replay
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {items.length >= limit && (
        <button type="button" onClick={() => setLimit(limit + 50)}>
          Show more
        </button>
      )}
    </>
  );
}

type Outcome = "success" | "denied" | "failed" | "error";

function Audit() {
  const pager = useCursorPager();
  const [action, setAction] = useState("");
  const [outcome, setOutcome] = useState<Outcome | "">("");
  const audit = useQuery({
    queryKey: ["audit", action, outcome, pager.after],
    queryFn: async () =>
      data(
        await api.GET("/api/admin/audit", {
          params: { query: { limit: PAGE, after: pager.after, action: action || undefined, outcome: outcome || undefined } },
        }),
      ),
  });
  return (
    <>
      <h2>Audit log</h2>
      <div className="toolbar">
        <label>
          Action
          <input
            value={action}
            onChange={(e) => {
              setAction(e.target.value);
              pager.reset();
            }}
            placeholder="any"
          />
        </label>
        <label>
          Outcome
          <select aria-label="Outcome"
            value={outcome}
            onChange={(e) => {
              setOutcome(e.target.value as Outcome | "");
              pager.reset();
            }}
          >
            <option value="">any</option>
            <option>success</option>
            <option>denied</option>
            <option>failed</option>
            <option>error</option>
          </select>
        </label>
      </div>
      <ErrorMessage error={audit.error} />
      {audit.isPending && <Loading />}
      {audit.data && audit.data.items.length === 0 && <Empty>No audited actions match.</Empty>}
      {audit.data && audit.data.items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">Outcome</th>
              <th scope="col">Request</th>
            </tr>
          </thead>
          <tbody>
            {audit.data.items.map((entry) => (
              <tr key={entry.event_id}>
                <td>{formatDate(entry.occurred_at)}</td>
                <td>
                  {entry.actor ?? "—"} {entry.actor_role && `(${entry.actor_role})`}
                </td>
                <td>{entry.action}</td>
                <td>{entry.outcome}</td>
                <td>
                  {entry.method} {entry.path} {entry.status_code}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {audit.data && <Pager pager={pager} nextCursor={audit.data.next_cursor} label="Audit log" />}
    </>
  );
}
