//! What is decided once a request's body is read and before any upstream sees it, in
//! order: the MCP view of the body and its mirrored headers (400 `-32020`), the token
//! (401, 403), then the route the method and tool pick and its policy (403, 429, the
//! hidden items). Each failure is a refusal with the request's JSON-RPC id.

use super::forward::Forwarder;
use super::headers::AuthHeaders;
use super::mcp_headers::check_mcp_headers;
use super::outcome::Refusal;
use super::policy_checks::Admitted;
use super::record::RequestRecord;
use super::responses::jsonrpc_id;
use crate::mcp::McpRequest;
use crate::routing::{Route, RouteTable};
use pingora_http::RequestHeader;

impl Forwarder<'_> {
    /// Runs the checks of a request whose head is `head` and body `body`, noting what it
    /// learns in `record`. Returns the headers auth puts in place of the client's, and what
    /// the policy admitted; `route` becomes the route the body picks.
    pub(super) async fn check_body(
        &self,
        head: &RequestHeader,
        (routes, route): (&RouteTable, &mut Route),
        record: &mut RequestRecord,
        body: &[u8],
    ) -> Result<(Option<AuthHeaders>, Admitted), Refusal> {
        if head.method == http::Method::POST {
            record.mcp = McpRequest::parse(body);
            record.label_source = check_mcp_headers(
                route.mcp_headers,
                &head.headers,
                record.mcp.as_ref(),
                self.metrics,
            )
            .map_err(|refusal| refusal.with_jsonrpc_id(jsonrpc_id(body)))?;
        }
        let auth_headers = match &self.auth {
            Some(gate) => Some(
                gate.check(head, body, record)
                    .await
                    .map_err(|refusal| refusal.with_jsonrpc_id(jsonrpc_id(body)))?,
            ),
            None => None,
        };
        record.tool_label = record.mcp.as_ref().and_then(|mcp| self.mcp.tool_label(mcp));
        let admitted = self.route_and_admit(head, (routes, route), record, body)?;
        Ok((auth_headers, admitted))
    }
}
