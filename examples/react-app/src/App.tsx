import { useEffect, useRef, useState } from "react";
import {
  WebSocketProvider,
  useDashboardMetrics,
  useDraftSync,
  useNotifications,
  usePitchViews,
  usePresence,
  useTyping,
  useUploadProgress,
  useWebSocket,
} from "@pitchey/realtime/react";
import type { PresenceStatus } from "@pitchey/realtime";
import * as config from "./config";

/** Gets a token (query string or the demo server's dev endpoint), then mounts the provider. */
export function Root() {
  const [token, setToken] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    config.fetchToken().then(
      (t) => live && setToken(t),
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, []);
  if (error) return <p className="error" data-testid="token-error">{error}</p>;
  if (!token) return <p>Getting a token…</p>;
  return (
    <WebSocketProvider url={config.wsUrl} token={token}>
      <App />
    </WebSocketProvider>
  );
}

function App() {
  const [showViews, setShowViews] = useState(true);
  const [showTyping, setShowTyping] = useState(true);
  return (
    <div className="app">
      <DebugHandle />
      <header>
        <h1>Pitchey Realtime</h1>
        <ConnectionStatusBadge />
        <NotificationDropdown />
      </header>
      <main>
        <section>
          <h2>People</h2>
          <PresenceDots />
          <PresenceStatusSelector />
        </section>
        <section>
          <h2>
            Pitch #{config.pitchId}{" "}
            <button data-testid="toggle-views" onClick={() => setShowViews((s) => !s)}>
              {showViews ? "Hide counter" : "Show counter"}
            </button>
          </h2>
          {showViews ? <LiveViewCounter pitchId={config.pitchId} /> : <p data-testid="views-hidden">Counter hidden</p>}
          <LiveMetrics />
        </section>
        <section>
          <h2>
            Conversation #{config.conversationId}{" "}
            <button data-testid="toggle-typing" onClick={() => setShowTyping((s) => !s)}>
              {showTyping ? "Hide typing" : "Show typing"}
            </button>
          </h2>
          {showTyping && <TypingIndicator conversationId={config.conversationId} />}
          <TypingInput conversationId={config.conversationId} />
        </section>
        <section>
          <h2>Uploads</h2>
          <UploadProgressList />
        </section>
        <section className="wide">
          <h2>Draft</h2>
          <DraftEditor />
        </section>
      </main>
    </div>
  );
}

/** The seed guide's console debugging aid: `window.pitcheyWS.client` is the shared client. */
function DebugHandle() {
  const { client, connectionStatus } = useWebSocket();
  useEffect(() => {
    const w = window as unknown as { pitcheyWS?: unknown };
    w.pitcheyWS = { client, status: connectionStatus };
  }, [client, connectionStatus]);
  return null;
}

function ConnectionStatusBadge() {
  const { connectionStatus, isConnected } = useWebSocket();
  return (
    <span data-testid="status" className={`badge ${isConnected ? "online" : "offline"}`}>
      {connectionStatus}
    </span>
  );
}

function NotificationDropdown() {
  const { notifications, unreadCount, markAsRead, markAllAsRead, clearNotifications } = useNotifications();
  const [open, setOpen] = useState(false);
  return (
    <div className="dropdown">
      <button data-testid="bell" onClick={() => setOpen((o) => !o)} aria-expanded={open}>
        Notifications <span data-testid="unread" className="count">{unreadCount}</span>
      </button>
      {open && (
        <div className="menu" data-testid="notifications">
          <div className="menu-actions">
            <button onClick={markAllAsRead}>Mark all read</button>
            <button onClick={clearNotifications}>Clear</button>
          </div>
          {notifications.length === 0 && <p className="muted">No notifications</p>}
          <ul>
            {notifications.map((n) => (
              <li
                key={n.id}
                data-testid="notification"
                className={n.read ? "read" : "unread"}
                onClick={() => markAsRead(n.id)}
              >
                <strong>{n.title}</strong> <span>{n.message}</span>
                {n.createdAt && <time>{new Date(n.createdAt).toLocaleTimeString()}</time>}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

function PresenceDots() {
  const { getPresence } = usePresence(config.people.map((p) => p.id));
  return (
    <ul className="people">
      {config.people.map((p) => {
        const status = getPresence(p.id)?.status ?? "offline";
        return (
          <li key={p.id} data-testid={`presence-${p.id}`} data-status={status}>
            <span className={`dot ${status}`} title={status} /> {p.name}
            {p.id === config.userId && " (you)"}
          </li>
        );
      })}
    </ul>
  );
}

function PresenceStatusSelector() {
  const { setPresence } = usePresence();
  const [status, setStatus] = useState<PresenceStatus>("online");
  return (
    <label>
      My status{" "}
      <select
        data-testid="my-status"
        value={status}
        onChange={(e) => {
          const s = e.target.value as PresenceStatus;
          setStatus(s);
          setPresence(s).catch(() => {});
        }}
      >
        <option value="online">online</option>
        <option value="away">away</option>
        <option value="offline">offline</option>
      </select>
    </label>
  );
}

function LiveViewCounter({ pitchId }: { pitchId: number }) {
  const { viewCount, uniqueViewers, recentViewers, reportView } = usePitchViews(pitchId);
  const [reported, setReported] = useState<string | null>(null);
  return (
    <div className="views" data-testid="views">
      <p>
        <span className="big" data-testid="view-count">{viewCount}</span> views ·{" "}
        <span data-testid="unique-viewers">{uniqueViewers}</span> unique
      </p>
      <button
        data-testid="report-view"
        onClick={() => {
          setReported("sending… (queued until acked)");
          reportView().then(
            (id) => setReported(`acked ${id}`),
            (e: Error) => setReported(`${e.name}: ${e.message}`),
          );
        }}
      >
        Report view
      </button>{" "}
      {reported && <small className="muted">{reported}</small>}
      {recentViewers.length > 0 && (
        <p className="muted">
          Recent: {recentViewers.slice(0, 5).map((v) => v.username ?? `#${v.userId}`).join(", ")}
        </p>
      )}
    </div>
  );
}

function LiveMetrics() {
  const { metrics, lastUpdated } = useDashboardMetrics();
  if (!metrics) return <p className="muted">Dashboard: no update yet</p>;
  return (
    <p className="muted" data-testid="metrics">
      Dashboard: {metrics.totalViews} views, {metrics.followers} followers, {metrics.investorInterest} interested
      investors ({lastUpdated?.toLocaleTimeString()})
    </p>
  );
}

function TypingIndicator({ conversationId }: { conversationId: number }) {
  const { typingUsers } = useTyping(conversationId);
  const names = typingUsers.map((u) => u.username ?? `user ${u.userId}`);
  return (
    <p className="typing" data-testid="typing">
      {names.length === 0 ? "\u00a0" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`}
    </p>
  );
}

/** An input that says "typing" while keys are pressed and "stopped" 2 s after the last one. */
function TypingInput({ conversationId }: { conversationId: number }) {
  const { setTyping } = useTyping(conversationId);
  const [text, setText] = useState("");
  const [sent, setSent] = useState<string[]>([]);
  const typing = useRef(false);
  const idle = useRef<ReturnType<typeof setTimeout>>();
  const stop = () => {
    clearTimeout(idle.current);
    if (typing.current) {
      typing.current = false;
      setTyping(false).catch(() => {});
    }
  };
  useEffect(() => () => clearTimeout(idle.current), []);
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (text.trim()) setSent((s) => [...s, text]);
        setText("");
        stop();
      }}
    >
      <input
        data-testid="typing-input"
        value={text}
        placeholder="Type a message…"
        onBlur={stop}
        onChange={(e) => {
          setText(e.target.value);
          if (!typing.current) {
            typing.current = true;
            setTyping(true).catch(() => {});
          }
          clearTimeout(idle.current);
          idle.current = setTimeout(stop, 2000);
        }}
      />{" "}
      <button type="submit">Send</button>
      {sent.length > 0 && <p className="muted">You wrote: {sent[sent.length - 1]}</p>}
    </form>
  );
}

function UploadProgressList() {
  const { uploads, activeUploads, clearCompleted } = useUploadProgress();
  const list = Object.values(uploads);
  return (
    <div data-testid="uploads">
      <p className="muted">
        {activeUploads.length} uploading{" "}
        <button onClick={clearCompleted} disabled={list.length === activeUploads.length}>
          Clear finished
        </button>
      </p>
      {list.length === 0 && <p className="muted">No uploads</p>}
      <ul className="uploads">
        {list.map((u) => (
          <li key={u.uploadId} data-testid={`upload-${u.uploadId}`} data-status={u.status}>
            <span>{u.fileName}</span> <progress max={100} value={u.progress} />{" "}
            <span data-testid="upload-percent">{Math.round(u.progress)}%</span> <small>{u.status}</small>
          </li>
        ))}
      </ul>
    </div>
  );
}

interface PitchDraft {
  title: string;
  description: string;
}

function DraftEditor() {
  const [error, setError] = useState<string | null>(null);
  const { content, isDirty, isSaving, hasConflict, conflict, lastSaved, updateContent, save, resolveWithLocal, resolveWithRemote } =
    useDraftSync<PitchDraft>({
      draftId: config.draftId,
      draftType: "pitch",
      autoSaveInterval: config.autoSaveInterval,
      conflictResolution: config.conflictResolution,
      validateContent: (c) => Boolean(c?.title),
      onError: (e) => setError(`${e.name}: ${e.message}`),
      onSave: () => setError(null),
    });
  const data: PitchDraft = { title: content?.title ?? "", description: content?.description ?? "" };
  const change = (field: keyof PitchDraft, value: string) => updateContent({ ...data, [field]: value });
  return (
    <div className="editor">
      <p className="sync-status" data-testid="sync-status">
        {isSaving && <span>Saving… </span>}
        {isDirty && <span>Unsaved changes </span>}
        {lastSaved && <span data-testid="last-saved">Last saved {lastSaved.toLocaleTimeString()}</span>}
        {!isSaving && !isDirty && !lastSaved && <span>Nothing to save</span>}
      </p>
      {hasConflict && (
        <div className="conflict" data-testid="conflict">
          <p>
            This draft was changed elsewhere
            {conflict?.remote?.title ? ` (their title: “${String(conflict.remote.title)}”)` : ""}. Which version do you keep?
          </p>
          <button data-testid="keep-mine" onClick={() => resolveWithLocal().catch(() => {})}>
            Keep mine
          </button>{" "}
          <button data-testid="use-theirs" onClick={() => resolveWithRemote().catch(() => {})}>
            Use theirs
          </button>
        </div>
      )}
      {error && <p className="error" data-testid="draft-error">{error}</p>}
      <input
        data-testid="draft-title"
        value={data.title}
        placeholder="Pitch title…"
        onChange={(e) => change("title", e.target.value)}
      />
      <textarea
        data-testid="draft-description"
        value={data.description}
        placeholder="Pitch description…"
        onChange={(e) => change("description", e.target.value)}
      />
      <button data-testid="save" onClick={() => save().catch(() => {})}>
        Save now
      </button>
    </div>
  );
}
