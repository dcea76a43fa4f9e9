/**
 * Removes `user:password@` (or `token@`) from each server URL in a comma-separated list, so a URL can
 * be printed in a log line or an error message. `nats://a:b@host:4222` → `nats://host:4222`.
 */
export function redactUrl(urls: string): string {
  return urls
    .split(',')
    .map((url) => url.trim().replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^@/]*@/i, '$1'))
    .join(',');
}

/** Replaces every occurrence of each secret in `text` with `***` (for messages that may quote them). */
export function redactSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join('***');
  return out;
}

export interface UrlCredentials {
  /** The server URLs with userinfo removed. */
  readonly servers: readonly string[];
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
}

/**
 * Splits `user:pass@` or `token@` out of server URLs (nats.js v3 ignores userinfo; nats.go and the nats
 * CLI honour it, so NATS_URL commonly carries it). The first URL that has userinfo wins; components
 * are percent-decoded.
 */
export function splitUrlCredentials(urls: string): UrlCredentials {
  let found: { user?: string; pass?: string; token?: string } | undefined;
  const servers = urls.split(',').map((raw) => {
    const url = raw.trim();
    const match = /^((?:[a-z][a-z0-9+.-]*:\/\/)?)([^@/]*)@(.*)$/i.exec(url);
    if (!match) return url;
    const [, scheme = '', userinfo = '', rest = ''] = match;
    if (!found && userinfo) {
      const colon = userinfo.indexOf(':');
      found =
        colon >= 0
          ? { user: decode(userinfo.slice(0, colon)), pass: decode(userinfo.slice(colon + 1)) }
          : { token: decode(userinfo) };
    }
    return `${scheme}${rest}`;
  });
  return { servers, ...found };
}

function decode(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    return component;
  }
}
