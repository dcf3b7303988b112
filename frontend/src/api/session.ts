// The signed-in state of the browser session. The credential itself is an HttpOnly cookie the
// page cannot read (set by POST /auth/login with `cookie: true`); what lives here is only
// whether this browser believes it is signed in, so a reload shows the app rather than the
// login page. A 401 from the server ends it.
import { useSyncExternalStore } from "react";

const SIGNED_IN_KEY = "prefaudit.signedIn";
const LEGACY_TOKEN_KEY = "prefaudit.token"; // where older builds kept the bearer token
const CSRF_COOKIE = "prefaudit_csrf";
const listeners = new Set<() => void>();
let loggedOut = false; // by this tab's Log out button (see `signOut`)

localStorage.removeItem(LEGACY_TOKEN_KEY); // a token in localStorage is readable by any script

/** Who this browser is signed in as (a username, or "1" when it is not known), or null. */
export function signedInAs(): string | null {
  return localStorage.getItem(SIGNED_IN_KEY);
}

export function isSignedIn(): boolean {
  return signedInAs() !== null;
}

/** Signed in (as `username`: another tab signing in as someone else then shows here), or out.
 * Signed out this way (an expired or revoked session), the login page returns to where one was. */
export function setSignedIn(signedIn: boolean, username?: string): void {
  if (signedIn) {
    localStorage.setItem(SIGNED_IN_KEY, username ?? "1");
    loggedOut = false;
  } else localStorage.removeItem(SIGNED_IN_KEY);
  listeners.forEach((notify) => notify());
}

/** Log out on purpose (the Log out button): the login page then starts afresh rather than
 * offering to return to the page one left, which the next person to log in may not see. */
export function signOut(): void {
  loggedOut = true;
  setSignedIn(false);
}

/** Whether this tab's session ended by logging out (not by expiring or in another tab). */
export function loggedOutHere(): boolean {
  return loggedOut;
}

/** The value of the session's CSRF cookie, which every change sends back as X-CSRF-Token. */
export function csrfToken(): string | null {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(value.join("="));
  }
  return null;
}

function subscribe(notify: () => void): () => void {
  listeners.add(notify);
  // Another tab logging in or out changes this tab's session too.
  const onStorage = (event: StorageEvent) => event.key === SIGNED_IN_KEY && notify();
  window.addEventListener("storage", onStorage);
  return () => {
    listeners.delete(notify);
    window.removeEventListener("storage", onStorage);
  };
}

export function useSignedIn(): boolean {
  return useSyncExternalStore(subscribe, isSignedIn);
}

export function useSignedInAs(): string | null {
  return useSyncExternalStore(subscribe, signedInAs);
}
