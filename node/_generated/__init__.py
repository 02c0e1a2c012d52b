"""Code generated from schemas/proto by ``make proto`` (node.transport.grpc.protogen). Do not edit."""
