import { useQuery } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { api, data, getSession, onSessionChange, type User } from "./api/client";

const MeContext = createContext<User | null>(null);

export function useSessionPresent(): boolean {
  const [present, setPresent] = useState(getSession() !== null);
  useEffect(() => onSessionChange(() => setPresent(getSession() !== null)), []);
  return present;
}

export function useMeQuery(enabled: boolean) {
  return useQuery({
    queryKey: ["me"],
    queryFn: async () => data(await api.GET("/api/auth/me")),
    enabled,
    staleTime: 60_000,
  });
}

export function MeProvider({ me, children }: { me: User; children: ReactNode }) {
  return <MeContext.Provider value={me}>{children}</MeContext.Provider>;
}

export function useMe(): User {
  const me = useContext(MeContext);
  if (!me) throw new Error("useMe outside MeProvider");
  return me;
}

export function hasRole(me: User, ...roles: string[]): boolean {
  return roles.includes(me.role);
}
