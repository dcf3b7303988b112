import { describe, expect, it } from "vitest";
import { csrfToken, isSignedIn, loggedOutHere, setSignedIn, signedInAs, signOut } from "./session";

describe("session", () => {
  it("remembers who is signed in (no token: that is an HttpOnly cookie) and reads the CSRF cookie", () => {
    expect(isSignedIn()).toBe(false);
    setSignedIn(true, "alice");
    expect(signedInAs()).toBe("alice");
    setSignedIn(true, "bob"); // another tab's login shows as another user, so caches are dropped
    expect(signedInAs()).toBe("bob");
    setSignedIn(false);
    expect(isSignedIn()).toBe(false);
    expect(csrfToken()).toBeNull();
    document.cookie = "other=1; path=/";
    document.cookie = "prefaudit_csrf=abc%3D; path=/";
    expect(csrfToken()).toBe("abc=");
  });

  it("tells a logout from an expired session (the login page returns only after the latter)", () => {
    setSignedIn(true, "alice");
    setSignedIn(false); // a 401
    expect(loggedOutHere()).toBe(false);
    setSignedIn(true, "alice");
    signOut();
    expect(isSignedIn()).toBe(false);
    expect(loggedOutHere()).toBe(true);
    setSignedIn(true, "alice");
    expect(loggedOutHere()).toBe(false);
  });
});
