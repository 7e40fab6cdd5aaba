-- Tools may also be python functions run inside the worker (transport 'python').
ALTER TABLE tool DROP CONSTRAINT tool_transport_check;
ALTER TABLE tool ADD CONSTRAINT tool_transport_check
    CHECK (transport IN ('http', 'mcp', 'python'));
