import { useLogout, useMe } from "../api/auth";

export function UserMenu() {
  const me = useMe();
  const logout = useLogout();
  return (
    <div className="user-menu">
      {me.data && <span className="muted">Signed in as {me.data.username}</span>}
      <button type="button" onClick={logout}>
        Log out
      </button>
    </div>
  );
}
