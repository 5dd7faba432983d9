/**
 * Errors a node step raises that a caller must tell apart from failures. `fedstake` exits 3 on a
 * TooLateError (the step's window has passed, or the step is done already), so a script can tell "nothing
 * left to do" from "it failed" (1) and "you called it wrong" (2).
 */

/** The step cannot be taken any more: its phase is over, or this node has taken it already. */
export class TooLateError extends Error {
  override readonly name = "TooLateError";
}
