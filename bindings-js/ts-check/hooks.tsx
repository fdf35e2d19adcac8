// Type-checks the React entry with the seed guide's hook names and shapes.
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
import { useEffect, useState } from "react";
import type { UserTyping } from "@pitchey/realtime";

function Dashboard() {
  const { isConnected, connectionStatus, client } = useWebSocket();
  const { notifications, unreadCount, markAsRead } = useNotifications();
  const { metrics, lastUpdated } = useDashboardMetrics();
  const { presence, isOnline, setPresence } = usePresence([1, 2]);
  const { uploads, activeUploads } = useUploadProgress();
  const { viewCount, uniqueViewers, recentViewers, reportView } = usePitchViews(42);
  useEffect(() => {
    void reportView();
    void setPresence("online");
  }, [reportView, setPresence]);
  return (
    <div onClick={() => markAsRead(notifications[0]?.id ?? "")}>
      {String(isConnected)} {connectionStatus} {String(client?.status)} {unreadCount}
      {metrics?.totalViews} {lastUpdated?.toISOString()} {Object.keys(presence).length} {String(isOnline(1))}
      {Object.keys(uploads).length} {activeUploads.length} {viewCount} {uniqueViewers} {recentViewers.length}
    </div>
  );
}

function Messaging({ conversationId }: { conversationId: number }) {
  const { subscribeToTyping, setTyping, typingUsers } = useTyping(conversationId);
  const [typing, setTypingUsers] = useState<UserTyping[]>([]);
  useEffect(() => subscribeToTyping((t) => setTypingUsers(t.filter((u) => u.isTyping))), [subscribeToTyping]);
  return <input onChange={() => void setTyping(true)} placeholder={`${typing.length + typingUsers.length}`} />;
}

function Editor({ pitchId }: { pitchId: number }) {
  const { content, isDirty, isSaving, hasConflict, lastSaved, updateContent, save, resolveWithLocal, resolveWithRemote } =
    useDraftSync<{ title: string; description: string }>({
      draftId: `pitch_${pitchId}`,
      draftType: "pitch",
      autoSaveInterval: 5000,
      maxReconnectAttempts: 10,
      conflictResolution: "ask",
      enableLocalStorage: true,
      validateContent: (c) => c?.title && c?.description,
      onSave: (draft) => console.log("saved", draft.baseVersion),
      onError: (error) => console.error(error.name),
    });
  return (
    <div>
      {isSaving && <span>Saving...</span>}
      {isDirty && <span>Unsaved changes</span>}
      {lastSaved && <span>{lastSaved.toLocaleTimeString()}</span>}
      {hasConflict && (
        <>
          <button onClick={resolveWithLocal}>Keep mine</button>
          <button onClick={resolveWithRemote}>Use theirs</button>
        </>
      )}
      <input value={content?.title ?? ""} onChange={(e) => updateContent({ title: e.target.value, description: "" })} />
      <button onClick={save}>Save</button>
    </div>
  );
}

export function App() {
  return (
    <WebSocketProvider url="wss://api.pitchey.com/ws" token="jwt" tokenProvider={async () => null} queueSize={100} persistKey="outbox">
      <Dashboard />
      <Messaging conversationId={3} />
      <Editor pitchId={42} />
    </WebSocketProvider>
  );
}
