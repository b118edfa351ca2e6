import { describe, expect, it } from "vitest";
import { addressLimitKey, CLIENT_ADDRESS_HEADER, clientAddressFrom } from "./client-address";

function headersOf(socket: string | null, forwarded?: string): Headers {
  const h = new Headers();
  if (socket !== null) h.set(CLIENT_ADDRESS_HEADER, socket);
  if (forwarded !== undefined) h.set("x-forwarded-for", forwarded);
  return h;
}

describe("clientAddressFrom", () => {
  it("with no trusted proxy, takes the socket's address and ignores X-Forwarded-For", () => {
    expect(clientAddressFrom(headersOf("203.0.113.9", "198.51.100.1"), 0)).toBe("203.0.113.9");
    expect(clientAddressFrom(headersOf("::ffff:127.0.0.1", "10.0.0.1, 10.0.0.2"), 0)).toBe(
      "127.0.0.1",
    );
    expect(clientAddressFrom(headersOf("2001:DB8::1"), 0)).toBe("2001:db8::1");
  });

  it("without the server's header knows no address, whatever the client claims", () => {
    expect(clientAddressFrom(headersOf(null, "198.51.100.1"), 0)).toBeNull();
    expect(clientAddressFrom(headersOf(null, "198.51.100.1"), 1)).toBeNull();
  });

  it("with one proxy, takes the address that proxy appended, not what the client wrote", () => {
    // The client forged two entries; the proxy (at 10.0.0.5) appended the real 203.0.113.9.
    const h = headersOf("10.0.0.5", "1.1.1.1, 2.2.2.2, 203.0.113.9");
    expect(clientAddressFrom(h, 1)).toBe("203.0.113.9");
  });

  it("with two proxies, counts two entries from the right", () => {
    // client 203.0.113.9 → proxy A (appends client) → proxy B at 10.0.0.6 (appends A's 10.0.0.7)
    const h = headersOf("10.0.0.6", "6.6.6.6, 203.0.113.9, 10.0.0.7");
    expect(clientAddressFrom(h, 2)).toBe("203.0.113.9");
    expect(clientAddressFrom(h, 1)).toBe("10.0.0.7");
  });

  it("falls back to the left-most entry when the chain is shorter than the hops", () => {
    expect(clientAddressFrom(headersOf("10.0.0.5"), 1)).toBe("10.0.0.5");
    expect(clientAddressFrom(headersOf("10.0.0.5", "203.0.113.9"), 3)).toBe("203.0.113.9");
  });

  it("answers null for an entry that is not an IP address", () => {
    expect(clientAddressFrom(headersOf("10.0.0.5", "unknown"), 1)).toBeNull();
    expect(clientAddressFrom(headersOf("10.0.0.5", "203.0.113.9:4711"), 1)).toBeNull();
    expect(clientAddressFrom(headersOf(""), 0)).toBeNull();
  });

  it("reads only the tail of a huge X-Forwarded-For", () => {
    const h = headersOf("10.0.0.5", `${"9.9.9.9, ".repeat(200_000)}203.0.113.9`);
    expect(clientAddressFrom(h, 1)).toBe("203.0.113.9");
  });
});

describe("addressLimitKey", () => {
  it("counts an IPv6 client by its /64, however the address is written", () => {
    const key = "ip:2001:db8:1:2::/64";
    expect(addressLimitKey("2001:db8:1:2::1")).toBe(key);
    expect(addressLimitKey("2001:db8:1:2:ffff:ffff:ffff:ffff")).toBe(key);
    expect(addressLimitKey("2001:0db8:0001:0002:0:0:0:9")).toBe(key);
    expect(addressLimitKey("2001:db8:1:3::1")).not.toBe(key);
    expect(addressLimitKey("2001:db8::1")).toBe("ip:2001:db8:0:0::/64");
    expect(addressLimitKey("::1")).toBe("ip:0:0:0:0::/64");
    expect(addressLimitKey("fe80::1%eth0")).toBe("ip:fe80:0:0:0::/64");
    expect(addressLimitKey("64:ff9b::192.0.2.1")).toBe("ip:64:ff9b:0:0::/64");
  });

  it("keeps an IPv4 address whole, and names an unknown one", () => {
    expect(addressLimitKey("203.0.113.9")).toBe("ip:203.0.113.9");
    expect(addressLimitKey(null)).toBe("ip:unknown");
  });
});
