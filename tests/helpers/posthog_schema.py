"""PostHog's documented LLM-analytics properties, for the schema tests of every event."""

# PostHog's documented $ai_generation properties and their JSON types.
GENERATION_SCHEMA = {
    "$ai_trace_id": str,
    "$ai_span_id": str,
    "$ai_span_name": str,
    "$ai_parent_id": str,
    "$ai_model": str,
    "$ai_provider": str,
    "$ai_input": list,
    "$ai_input_tokens": int,
    "$ai_output_choices": list,
    "$ai_output_tokens": int,
    "$ai_cache_read_input_tokens": int,
    "$ai_latency": float,
    "$ai_time_to_first_token": float,
    "$ai_http_status": int,
    "$ai_base_url": str,
    "$ai_is_error": bool,
    "$ai_error": str,
    "$ai_tools": list,
    "$ai_stream": bool,
    "$ai_input_cost_usd": float,
    "$ai_output_cost_usd": float,
    "$ai_total_cost_usd": float,
    "$ai_session_id": str,
}
ALWAYS_SENT = {
    "$ai_trace_id",
    "$ai_span_id",
    "$ai_model",
    "$ai_provider",
    "$ai_input_tokens",
    "$ai_output_tokens",
    "$ai_latency",
    "$ai_http_status",
    "$ai_base_url",
    "$ai_is_error",
    "$ai_stream",
}
SPAN_SCHEMA = {
    "$ai_trace_id": str,
    "$ai_span_id": str,
    "$ai_span_name": str,
    "$ai_parent_id": str,
    "$ai_input_state": (dict, list, str),
    "$ai_output_state": (dict, list, str),
    "$ai_latency": float,
    "$ai_is_error": bool,
    "$ai_error": str,
    "$ai_session_id": str,
}


def assert_follows_schema(event, schema, always=()):
    properties = event["properties"]
    ai_names = {name for name in properties if name.startswith("$ai_")}
    assert ai_names <= set(schema), ai_names - set(schema)
    assert set(always) <= ai_names, set(always) - ai_names
    for name in ai_names:
        assert isinstance(properties[name], schema[name]), (name, properties[name])
        assert not isinstance(properties[name], bool) or schema[name] is bool, name
