/** One error type per failure kind in the SIP/RTP layers. */
export class SipParseError extends Error {
  override name = "SipParseError";
}
export class SipTransactionTimeout extends Error {
  override name = "SipTransactionTimeout";
}
export class CallStateError extends Error {
  override name = "CallStateError";
}
export class PortRangeExhausted extends Error {
  override name = "PortRangeExhausted";
}
export class SdpNegotiationError extends Error {
  override name = "SdpNegotiationError";
}
/** The RTP worker crashed, stopped answering, or was closed: its calls' media is gone. */
export class RtpWorkerLost extends Error {
  override name = "RtpWorkerLost";
}
