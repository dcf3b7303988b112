import { describe, expect, it } from "vitest";
import { csrfToken, isSignedIn, setSignedIn, signedInAs } from "./session";

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
});
