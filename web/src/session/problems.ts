/**
 * Everything that can go wrong, said the way a user can act on it: what
 * happened, and what to do next.
 */
import { CloseCode } from '../../../src/protocol/index.js';

export interface Problem {
  title: string;
  /** What to do next. */
  action: string;
  /** The server's or browser's own words, when they add something. */
  detail?: string;
}

export function insecureOrigin(): Problem {
  return {
    title: 'The microphone needs a secure page',
    action: `Browsers only give the microphone to pages served over https:// or from localhost. Open this app at https://${location.host} or http://localhost:${location.port || '8000'}.`,
  };
}

export function microphoneProblem(err: unknown): Problem {
  const name = (err as { name?: string })?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return {
      title: 'Microphone access was denied',
      action: 'Allow the microphone for this site (the icon at the left of the address bar, or the browser’s site settings), then press Connect again.',
    };
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') {
    return { title: 'No microphone found', action: 'Plug in or enable a microphone, then press Connect again.' };
  }
  if (name === 'NotReadableError') {
    return { title: 'The microphone is busy', action: 'Another app or tab is using it. Close that, then press Connect again.' };
  }
  return { title: 'The audio could not start', action: 'Reload the page and try again.', detail: (err as Error)?.message };
}

export function unreachable(url: string): Problem {
  return {
    title: 'Could not reach the server',
    action: 'Check that the server is running and that the server address in Settings is right, then connect again.',
    detail: url,
  };
}

/** A close the user did not ask for. `serverMessage` is the last kind-5 error frame, if any. */
export function closeProblem(code: number, reason: string, serverMessage?: string): Problem | undefined {
  const detail = serverMessage || reason || undefined;
  switch (code) {
    case CloseCode.Normal:
    case CloseCode.TimeLimit:
    case CloseCode.EndedByEngine:
      return undefined;
    case CloseCode.TryAgainLater:
      return { title: 'The server is full', action: 'Every conversation slot is taken. Wait a minute, then connect again.', detail };
    case CloseCode.InternalError:
      return { title: 'The conversation engine stopped', action: 'The server lost the worker running this conversation. Connect again to start a new one.', detail };
    case CloseCode.WorkerStalled:
      return { title: 'The conversation engine stopped answering', action: 'Connect again to start a new conversation.', detail };
    case CloseCode.InvalidParams:
      return { title: 'A setting was refused', action: 'Fix the setting named below in Settings, then connect again.', detail };
    case CloseCode.ClientIdle:
      return { title: 'The server stopped hearing your microphone', action: 'Check that the microphone is still connected, then connect again.', detail };
    case CloseCode.SlowConsumer:
      return { title: 'The connection was too slow', action: 'This browser fell behind the audio stream. Close other heavy tabs or use a better network, then connect again.', detail };
    default:
      return {
        title: 'Disconnected',
        action: 'The connection to the server dropped. Check your network, then press Reconnect.',
        detail: detail ?? (code ? `close code ${code}` : undefined),
      };
  }
}
