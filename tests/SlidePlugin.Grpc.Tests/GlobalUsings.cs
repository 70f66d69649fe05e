// The gRPC surface every test here uses: Grpc.Core.Api's types, Grpc.Net.Client's channel, our SDK's factory.
global using Grpc.Core;
global using Grpc.Net.Client;
global using SlidePlugin.Client;
