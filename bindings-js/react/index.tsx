/**
 * `@pitchey/realtime/react`: the React provider and hooks of the Pitchey frontend guide
 * (`WebSocketProvider`, `useWebSocket`, `useNotifications`, `useDashboardMetrics`,
 * `usePresence`, `useTyping`, `useUploadProgress`, `usePitchViews`, `useDraftSync`), over one
 * shared `Client`. Every hook unsubscribes on unmount.
 */
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from "react";
import {
  Client,
  type ClientOptions,
  type ConflictResolution,
  type ConnectionStatus,
  type DashboardMetrics,
  type Draft,
  type DraftConflict,
  type DraftEvent,
  type DraftState,
  type Notification,
  type PitchStats,
  type Presence,
  type PresenceStatus,
  type RealtimeError,
  type RecentViewer,
  type UploadProgress,
  type UserTyping,
} from "@pitchey/realtime";

/** What `useWebSocket()` returns. */
export interface WebSocketContextValue {
  /** The shared client (`null` before the provider's first effect ran). */
  client: Client | null;
  /** True when the status is `connected`. */
  isConnected: boolean;
  /** The connection status. */
  connectionStatus: ConnectionStatus;
  /** Report a pitch view; resolves with the message id once acked. */
  sendPitchView: (pitchId: number) => Promise<string>;
  /** Send a durable message; resolves with its id once acked. */
  sendMessage: (type: string, data: unknown) => Promise<string>;
  /** Set the user's own presence. */
  setPresence: (status: PresenceStatus) => Promise<void>;
}

const WebSocketContext = createContext<WebSocketContextValue | null>(null);

/** Props of `WebSocketProvider`. */
export interface WebSocketProviderProps
  extends Omit<ClientOptions, "url" | "token" | "tokenProvider"> {
  /** The endpoint, e.g. `wss://api.pitchey.com/ws`. */
  url: string;
  /** The JWT (changing it reconnects with the new one). */
  token?: string | null;
  /** Asked for a fresh token when the server refuses one. */
  tokenProvider?: () => Promise<string | null> | string | null;
  /** Connect on mount (default true). */
  autoConnect?: boolean;
  /** Use this client instead of making one (the provider then neither connects nor closes it). */
  client?: Client;
  /** How long to flush queued messages on unmount, in ms (default 1000). */
  closeTimeoutMs?: number;
  children?: ReactNode;
}

const notReady = (): Promise<never> =>
  Promise.reject(Object.assign(new Error("the WebSocketProvider has no client yet"), { name: "Closed", code: "Closed" }));

/** Makes one `Client` for its subtree, connects it, and closes it on unmount. */
export function WebSocketProvider(props: WebSocketProviderProps) {
  const { url, token, autoConnect = true, client: given, closeTimeoutMs = 1000, children } = props;
  const { backoff, queueSize, heartbeatMs, persistKey } = props;
  const providerRef = useRef(props.tokenProvider);
  providerRef.current = props.tokenProvider;
  const [client, setClient] = useState<Client | null>(given ?? null);
  const [status, setStatus] = useState<ConnectionStatus>(given ? given.status : "idle");

  useEffect(() => {
    if (given) {
      setClient(given);
      return;
    }
    const options: ClientOptions = { url, token: token ?? null, backoff, queueSize, heartbeatMs, persistKey };
    if (providerRef.current) {
      options.tokenProvider = async () => (providerRef.current ? await providerRef.current() : null);
    }
    const made = new Client(options);
    setClient(made);
    setStatus(made.status);
    if (autoConnect) {
      made.connect().catch(() => setStatus(made.status));
    }
    return () => {
      setClient(null);
      made.close(closeTimeoutMs).finally(() => made.free());
    };
    // The client is remade when what it was made from changes.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [given, url, token, autoConnect, persistKey, queueSize, heartbeatMs, JSON.stringify(backoff ?? null), closeTimeoutMs]);

  useEffect(() => {
    if (!client) return;
    setStatus(client.status);
    return client.on("state", (s) => setStatus(s.status));
  }, [client]);

  const value = useMemo<WebSocketContextValue>(
    () => ({
      client,
      isConnected: status === "connected",
      connectionStatus: status,
      sendPitchView: (pitchId) => (client ? client.sendPitchView(pitchId) : notReady()),
      sendMessage: (type, data) => (client ? client.send(type, data) : notReady()),
      setPresence: (s) => (client ? client.setPresence(s) : notReady()),
    }),
    [client, status],
  );
  return <WebSocketContext.Provider value={value}>{children}</WebSocketContext.Provider>;
}

/** The shared client and its connection status. Must be inside a `WebSocketProvider`. */
export function useWebSocket(): WebSocketContextValue {
  const value = useContext(WebSocketContext);
  if (!value) {
    throw new Error("useWebSocket must be used inside a <WebSocketProvider>");
  }
  return value;
}

/** `client.on(type, handler)` for the life of the component (the handler may change). */
function useClientEvent<K extends Parameters<Client["on"]>[0]>(
  client: Client | null,
  type: K,
  handler: (payload: any) => void,
) {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    if (!client) return;
    return client.on(type as any, (p: unknown) => ref.current(p));
  }, [client, type]);
}

/** `client.subscribe(channel, handler)` for the life of the component. */
function useChannel(client: Client | null, channel: string | null, handler: (payload: any) => void) {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    if (!client || !channel) return;
    return client.subscribe(channel as any, (p: unknown) => ref.current(p));
  }, [client, channel]);
}

/** What `useNotifications()` returns. */
export interface UseNotifications {
  /** Newest first. */
  notifications: Notification[];
  unreadCount: number;
  markAsRead: (id: string) => void;
  markAllAsRead: () => void;
  clearNotifications: () => void;
}

/** The user's notifications as they arrive (newest first; keeps at most `limit`, default 100). */
export function useNotifications(limit = 100): UseNotifications {
  const { client } = useWebSocket();
  const [notifications, setNotifications] = useState<Notification[]>([]);
  useClientEvent(client, "notification", (n: Notification) =>
    setNotifications((list) => [n, ...list.filter((x) => x.id !== n.id)].slice(0, limit)),
  );
  return {
    notifications,
    unreadCount: notifications.filter((n) => !n.read).length,
    markAsRead: useCallback((id: string) => setNotifications((l) => l.map((n) => (n.id === id ? { ...n, read: true } : n))), []),
    markAllAsRead: useCallback(() => setNotifications((l) => l.map((n) => ({ ...n, read: true }))), []),
    clearNotifications: useCallback(() => setNotifications([]), []),
  };
}

/** What `useDashboardMetrics()` returns. */
export interface UseDashboardMetrics {
  metrics: (DashboardMetrics & Record<string, unknown>) | null;
  lastUpdated: Date | null;
  isConnected: boolean;
}

/** The creator dashboard's live metrics. */
export function useDashboardMetrics(): UseDashboardMetrics {
  const { client, isConnected } = useWebSocket();
  const [state, setState] = useState<{ metrics: UseDashboardMetrics["metrics"]; lastUpdated: Date | null }>({
    metrics: null,
    lastUpdated: null,
  });
  useClientEvent(client, "dashboard_update", (metrics) => setState({ metrics, lastUpdated: new Date() }));
  return { ...state, isConnected };
}

/** What `usePresence()` returns. */
export interface UsePresence {
  /** Known presence by user id. */
  presence: Record<number, Presence>;
  getPresence: (userId: number) => Presence | undefined;
  isOnline: (userId: number) => boolean;
  /** Set the user's own status. */
  setPresence: (status: PresenceStatus) => Promise<void>;
}

/** Presence of the given users (subscribed to `presence:ID` each), and one's own status. */
export function usePresence(userIds: number[] = []): UsePresence {
  const { client, setPresence } = useWebSocket();
  const [presence, setMap] = useState<Record<number, Presence>>({});
  useClientEvent(client, "presence_update", (p: Presence) => setMap((m) => ({ ...m, [p.userId]: p })));
  const key = userIds.join(",");
  useEffect(() => {
    if (!client) return;
    const offs = userIds.map((id) => client.subscribe(`presence:${id}`, () => {}));
    return () => offs.forEach((off) => off());
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, key]);
  return {
    presence,
    getPresence: (id) => presence[id],
    isOnline: (id) => presence[id]?.status === "online",
    setPresence,
  };
}

/** What `useTyping(conversationId)` returns. */
export interface UseTyping {
  /** Users typing now. */
  typingUsers: UserTyping[];
  /** Say the user started or stopped typing. */
  setTyping: (isTyping: boolean) => Promise<void>;
  /** Be told of every change of the typing list; returns the unsubscribe function. */
  subscribeToTyping: (callback: (typing: UserTyping[]) => void) => () => void;
}

/** Typing indicators of one conversation (an entry expires `expireMs` after its last update). */
export function useTyping(conversationId: number, expireMs = 6000): UseTyping {
  const { client } = useWebSocket();
  const [typingUsers, setTypingUsers] = useState<UserTyping[]>([]);
  const callbacks = useRef(new Set<(typing: UserTyping[]) => void>());
  const timers = useRef(new Map<number, ReturnType<typeof setTimeout>>());

  // State updaters must be pure (StrictMode runs them twice): callbacks are told from an effect.
  const publish = useCallback((update: (list: UserTyping[]) => UserTyping[]) => setTypingUsers(update), []);
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    callbacks.current.forEach((cb) => cb(typingUsers));
  }, [typingUsers]);

  useChannel(client, `conversation:${conversationId}`, (t: UserTyping) => {
    const old = timers.current.get(t.userId);
    if (old) clearTimeout(old);
    timers.current.delete(t.userId);
    publish((list) => {
      const others = list.filter((u) => u.userId !== t.userId);
      return t.isTyping ? [...others, t] : others;
    });
    if (t.isTyping) {
      timers.current.set(
        t.userId,
        setTimeout(() => publish((list) => list.filter((u) => u.userId !== t.userId)), expireMs),
      );
    }
  });
  useEffect(() => {
    const all = timers.current;
    return () => {
      all.forEach((t) => clearTimeout(t));
      all.clear();
      // Who typed in the previous conversation is not typing in the next one.
      setTypingUsers((list) => (list.length ? [] : list));
    };
  }, [conversationId]);

  const setTyping = useCallback(
    (isTyping: boolean) => (client ? client.setTyping(conversationId, isTyping) : notReady()),
    [client, conversationId],
  );
  const subscribeToTyping = useCallback((callback: (typing: UserTyping[]) => void) => {
    callbacks.current.add(callback);
    return () => {
      callbacks.current.delete(callback);
    };
  }, []);
  return { typingUsers, setTyping, subscribeToTyping };
}

/** What `useUploadProgress()` returns. */
export interface UseUploadProgress {
  /** Every upload seen, by id. */
  uploads: Record<string, UploadProgress>;
  /** Uploads in progress. */
  activeUploads: UploadProgress[];
  clearCompleted: () => void;
}

/** The user's upload progress. */
export function useUploadProgress(): UseUploadProgress {
  const { client } = useWebSocket();
  const [uploads, setUploads] = useState<Record<string, UploadProgress>>({});
  useClientEvent(client, "upload_progress", (u: UploadProgress) => setUploads((m) => ({ ...m, [u.uploadId]: u })));
  return {
    uploads,
    activeUploads: Object.values(uploads).filter((u) => u.status === "uploading"),
    clearCompleted: useCallback(
      () => setUploads((m) => Object.fromEntries(Object.entries(m).filter(([, u]) => u.status === "uploading"))),
      [],
    ),
  };
}

/** What `usePitchViews(pitchId)` returns. */
export interface UsePitchViews {
  stats: PitchStats | null;
  viewCount: number;
  uniqueViewers: number;
  recentViewers: RecentViewer[];
  /** Report that the user viewed this pitch; resolves with the message id once acked. */
  reportView: () => Promise<string>;
}

/** Live view counters of one pitch (subscribed to `pitch:ID`). */
export function usePitchViews(pitchId: number): UsePitchViews {
  const { client } = useWebSocket();
  const [stats, setStats] = useState<PitchStats | null>(null);
  useEffect(() => setStats(null), [pitchId]);
  useChannel(client, `pitch:${pitchId}`, (s: PitchStats) => {
    if (s.pitchId === pitchId) setStats(s);
  });
  return {
    stats,
    viewCount: stats?.viewCount ?? 0,
    uniqueViewers: stats?.uniqueViewers ?? 0,
    recentViewers: stats?.recentViewers ?? [],
    reportView: useCallback(() => (client ? client.sendPitchView(pitchId) : notReady()), [client, pitchId]),
  };
}

/** Options of `useDraftSync` (the seed guide's). */
export interface UseDraftSyncOptions<T = any> {
  draftId: string;
  draftType?: string;
  /** The content loaded from the server, if any. */
  initialContent?: T;
  /** Its version, if known. */
  baseVersion?: number;
  /** Auto-save interval in ms (default 5000). */
  autoSaveInterval?: number;
  conflictResolution?: ConflictResolution;
  /** Content it rejects is kept but not saved. */
  validateContent?: (content: T) => unknown;
  /** Keep unsaved content in localStorage (`pitchey-draft:<draftId>`) across reloads. */
  enableLocalStorage?: boolean;
  /** Accepted for compatibility with the seed guide; reconnects are the client's. */
  maxReconnectAttempts?: number;
  onSave?: (draft: DraftState) => void;
  onError?: (error: RealtimeError | Error) => void;
}

/** What `useDraftSync` returns (the seed guide's). */
export interface UseDraftSync<T = any> {
  content: T | undefined;
  isDirty: boolean;
  isSaving: boolean;
  hasConflict: boolean;
  conflict: DraftConflict | null;
  lastSaved: Date | null;
  updateContent: (content: T) => void;
  save: () => Promise<void>;
  resolveWithLocal: () => Promise<void>;
  resolveWithRemote: () => Promise<void>;
}

/** An auto-saved draft with conflict resolution. */
export function useDraftSync<T = any>(options: UseDraftSyncOptions<T>): UseDraftSync<T> {
  const { client } = useWebSocket();
  const { draftId, draftType, autoSaveInterval = 5000, conflictResolution = "ask", enableLocalStorage = false } = options;
  const opts = useRef(options);
  opts.current = options;
  const storageKey = `pitchey-draft:${draftId}`;
  const draftRef = useRef<Draft | null>(null);
  const [state, setState] = useState<DraftState | null>(null);
  const [localContent, setLocalContent] = useState<T | undefined>(options.initialContent);

  const fail = useCallback((e: unknown) => {
    const error = e instanceof Error ? e : new Error(String(e));
    opts.current.onError?.(error);
  }, []);

  const refresh = useCallback(async () => {
    const draft = draftRef.current;
    if (!draft) return;
    try {
      const s = await draft.state();
      if (draftRef.current === draft) setState(s);
    } catch {
      // Closed meanwhile.
    }
  }, []);

  useEffect(() => {
    if (!client) return;
    const stored = enableLocalStorage ? readStored<T>(storageKey) : undefined;
    const draft = client.openDraft(draftId, {
      draftType,
      initial: opts.current.initialContent ?? null,
      baseVersion: opts.current.baseVersion,
      autoSaveIntervalMs: autoSaveInterval,
      conflictResolution,
      validate: (content: any) => {
        const v = opts.current.validateContent;
        return v ? Boolean(v(content)) : true;
      },
    });
    draftRef.current = draft;
    const off = draft.on((event: DraftEvent) => {
      if (event.type === "updated") setLocalContent(event.content);
      if (event.type === "save_failed") {
        fail(Object.assign(new Error(event.message), { name: event.name, code: event.name }));
      }
      void refresh().then(() => {
        if (event.type === "saved") {
          if (enableLocalStorage) localStorage.removeItem(storageKey);
          draft.state().then((s) => opts.current.onSave?.(s), () => {});
        }
      });
    });
    if (stored !== undefined) {
      setLocalContent(stored);
      draft.update(stored).catch(fail);
    }
    void refresh();
    // Saving starts in the client without an event: look now and then.
    const poll = setInterval(refresh, 1000);
    return () => {
      clearInterval(poll);
      off();
      draftRef.current = null;
      draft.close();
      draft.free();
    };
  }, [client, draftId, draftType, autoSaveInterval, conflictResolution, enableLocalStorage, storageKey, refresh, fail]);

  const updateContent = useCallback(
    (content: T) => {
      setLocalContent(content);
      if (enableLocalStorage) {
        try {
          localStorage.setItem(storageKey, JSON.stringify(content));
        } catch {
          // Storage full or denied: the draft is still saved to the server.
        }
      }
      const draft = draftRef.current;
      if (draft) draft.update(content).then(refresh, fail);
    },
    [enableLocalStorage, storageKey, refresh, fail],
  );
  const act = useCallback(
    (f: (d: Draft) => Promise<void>) => async () => {
      const draft = draftRef.current;
      if (!draft) return;
      try {
        await f(draft);
      } catch (e) {
        fail(e);
        throw e;
      } finally {
        await refresh();
      }
    },
    [refresh, fail],
  );
  const save = useMemo(() => act((d) => d.save()), [act]);
  const resolveWithLocal = useMemo(() => act((d) => d.resolveWithLocal()), [act]);
  const resolveWithRemote = useMemo(
    () =>
      act(async (d) => {
        await d.resolveWithRemote();
        setLocalContent((await d.state()).content);
      }),
    [act],
  );

  return {
    content: localContent,
    isDirty: state?.isDirty ?? false,
    isSaving: state?.isSaving ?? false,
    hasConflict: Boolean(state?.conflict),
    conflict: state?.conflict ?? null,
    lastSaved: state?.lastSaved != null ? new Date(state.lastSaved) : null,
    updateContent,
    save,
    resolveWithLocal,
    resolveWithRemote,
  };
}

function readStored<T>(key: string): T | undefined {
  try {
    const text = localStorage.getItem(key);
    return text == null ? undefined : (JSON.parse(text) as T);
  } catch {
    return undefined;
  }
}
