import { Link } from "react-router";
import { useLogout, useMe } from "../api/auth";

export function UserMenu() {
  const me = useMe();
  const logout = useLogout();
  return (
    <div className="user-menu">
      {me.data && <span className="muted">Signed in as {me.data.username}</span>}
      {me.data?.is_admin && <Link to="/admin">Users</Link>}
      <Link to="/tokens">API tokens</Link>
      <button type="button" onClick={() => void logout()}>
        Log out
      </button>
    </div>
  );
}
